"""What ClickHouse answers about reported executions idle for long (streams/hot_set.py):
the API's archive lookup hands them back, restore leaves them out, the idle sweep finds
those past their tracked idle timeout."""

from __future__ import annotations

import time

from api.idle_sweep import idle_execution_ids
from projections import queries
from projections.clickhouse import ClickHouse
from projections.rows import project
from projections.writer import write_projection
from runledger.restore import unfinished_execution_ids
from streams.contracts import FinishExecution, Report, ReportBatch
from streams.machine import MachineConfig, decide

MIN = 60_000


async def _executions(ch: ClickHouse, db: str, now: int) -> None:
    """``old`` and ``older``: reported, idle 10 and 20 minutes; ``fresh``: reported 10 s
    ago; ``done``: ended 20 minutes ago."""
    events = []
    for eid, at in (("old", now - 10 * MIN), ("older", now - 20 * MIN),
                    ("fresh", now - 10_000), ("done", now - 21 * MIN)):  # fmt: skip
        report = Report(report_id="r1", event_type="step_started", step_id="a", timestamp=at)
        d = decide(None, ReportBatch(execution_id=eid, received_at=at, reports=(report,)),
                   MachineConfig())  # fmt: skip
        events += d.events
        if eid == "done":
            end = FinishExecution(execution_id=eid, received_at=at + MIN, command_id="f1",
                                  status="succeeded")  # fmt: skip
            events += decide(d.state, end, MachineConfig()).events
    await write_projection(ch, project(events, {}), database=db)


async def test_idle_reported_executions_are_told_apart(clickhouse: ClickHouse, database: str):
    ch, db, now = clickhouse, database, int(time.time() * 1000)
    await _executions(ch, db, now)
    five_ago = now - 5 * MIN
    everyone = {"old", "older", "fresh", "done"}

    evictable = await queries.load_states(ch, everyone, finished_only=True,
                                          idle_before=five_ago, database=db)  # fmt: skip
    assert set(evictable) == {"old", "older", "done"}
    assert set(await queries.load_states(ch, everyone, finished_only=True, database=db)) == {
        "done"}

    assert sorted(await unfinished_execution_ids(ch, db)) == ["fresh", "old", "older"]
    assert await unfinished_execution_ids(ch, db, five_ago) == ["fresh"]

    assert await idle_execution_ids(ch, db, five_ago, 10) == ["older", "old"]  # oldest first
    assert await idle_execution_ids(ch, db, five_ago, 1) == ["older"]
    assert await idle_execution_ids(ch, db, now - 15 * MIN, 10) == ["older"]
