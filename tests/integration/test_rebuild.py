"""A rebuild from `events` gives what the live projection gave: same tracking figures,
same records, same execution details; views on the derived tables are refilled."""

from __future__ import annotations

from typing import Any

from projections import queries, tracking
from projections.clickhouse import ClickHouse
from projections.filters import Filters
from projections.rebuild import rebuild_projections
from projections.rows import project
from projections.search import search_executions
from projections.writer import write_projection
from tests.event_factory import T0, History, recon_execution, single_system_execution

IDS = ("exec_recon", "exec_erp", "exec_late")


def late_start() -> History:
    h = History("exec_late")
    h.add("execution_started", T0, mode="tracked")
    h.add("step_skipped", T0 + 150, "s")
    h.add("step_succeeded", T0 + 300, "s")
    h.add("step_started", T0 + 100, "s")  # folds two attempts into one: a retraction
    return h


async def _live(ch: ClickHouse, db: str, batches: list[list[Any]]) -> None:
    """As the projector does it: each batch folded onto the states read back."""
    for batch in batches:
        prior = await queries.load_states(ch, {e.execution_id for e in batch}, database=db)
        await write_projection(ch, project(batch, prior), database=db)


async def _figures(ch: ClickHouse, db: str) -> dict[str, Any]:
    window = {"since_ms": T0 - 1, "until_ms": T0 + 60_000, "database": db}
    return {
        "summary": await tracking.tracking_summary(ch, **window),  # type: ignore[arg-type]
        "records": await tracking.tracking_records(ch, limit=1000, database=db),
        "failed": await tracking.tracking_records(ch, status="failed", database=db),
        **{eid: await tracking.tracking_summary(ch, eid, database=db) for eid in IDS},
        **{f"detail:{eid}": await queries.execution_detail(ch, eid, database=db) for eid in IDS},
        "search": await search_executions(ch, Filters(), 100, database=db),
        # executions_by_status: one status of one workflow
        **{f"search:{wf}:{status}": await search_executions(
            ch, Filters(workflow_id=wf, status=status), 100, database=db)
           for wf in ("wf_recon", "wf_erp") for status in ("running", "succeeded", "failed")},
    }  # fmt: skip


async def test_a_rebuild_equals_the_live_projection(clickhouse: ClickHouse, database: str):
    ch, db = clickhouse, database
    recon, erp, late = recon_execution(), single_system_execution(), late_start()
    await _live(ch, db, [
        [*recon.events[:8], *erp.events[:3]], late.events[:3], recon.events[8:12],
        [*recon.events[12:], *erp.events[3:]], late.events[3:],
    ])  # fmt: skip
    await ch.command(f"CREATE TABLE {db}.status_counts (status LowCardinality(String), "
                     "n UInt64) ENGINE = SummingMergeTree ORDER BY status")  # fmt: skip
    await ch.command(f"CREATE MATERIALIZED VIEW {db}.status_counts_mv TO {db}.status_counts "
                     f"AS SELECT status, count() AS n FROM {db}.step_records GROUP BY status")
    await _live(ch, db, [single_system_execution("exec_after_view").events])
    before = await _figures(ch, db)
    assert before["summary"]["total"] == 4 and len(before["records"]["items"]) == 12
    assert len(before["search"]["items"]) == 4
    assert sum(len(before[f"search:{wf}:{s}"]["items"])
               for wf in ("wf_recon", "wf_erp") for s in ("running", "succeeded", "failed")) == 3

    seen: list[int] = []
    # Pages of 4 events: executions run across pages, so states carry over.
    run = await rebuild_projections(ch, db, page_events=4,
                                    on_progress=lambda r: seen.append(r.events))  # fmt: skip
    assert (run.state, run.total_events, run.events, run.executions) == ("finished", 31, 31, 4)
    assert run.tables == ("executions", "step_records", "executions_by_time",
                          "executions_by_status", "status_counts")  # fmt: skip
    assert seen[-1] == 31 and seen == sorted(seen)
    assert await _figures(ch, db) == before

    # The view's target now counts the rebuilt rows (one per attempt, none superseded).
    view = await ch.query(f"SELECT status, sum(n) AS n FROM {db}.status_counts GROUP BY status "
                          "ORDER BY status")  # fmt: skip
    raw = await ch.query(f"SELECT status, count() AS n FROM {db}.step_records GROUP BY status "
                         "ORDER BY status")  # fmt: skip
    assert view == raw
    tables = await ch.query("SELECT name FROM system.tables WHERE database = {db:String} "
                            "AND name LIKE '%rebuild'", {"db": db})  # fmt: skip
    assert tables == []  # no shadow tables left behind
    # The view still follows the (new) step_records table.
    await _live(ch, db, [single_system_execution("exec_after_rebuild").events])
    after = await ch.query(f"SELECT sum(n) AS n FROM {db}.status_counts")
    assert after[0]["n"] == raw_total(raw) + 2


def raw_total(rows: list[dict[str, Any]]) -> int:
    return sum(int(r["n"]) for r in rows)
