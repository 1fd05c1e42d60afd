"""Restore benchmark: rebuild a fresh broker from ClickHouse.

Archive: N unfinished tracked executions (start + 2 step events each, projected through
the real batch writer) and, per execution, one journaled report batch that no archived
event cites (accepted, never applied). Restore sends N rehydrates (one per input topic)
and appends the N entries again.

    python benchmarks/restore.py [--executions 10000]
Last line: BENCH {json}.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import orjson
import typer
from rich.progress import Progress

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._harness import broker_and_clickhouse, machine  # noqa: E402
from projections.clickhouse import ClickHouse  # noqa: E402
from projections.journal import COLUMNS  # noqa: E402
from projections.rows import project  # noqa: E402
from projections.schema import migrate  # noqa: E402
from projections.writer import write_projection  # noqa: E402
from runledger.kafka import create_topics, make_producer  # noqa: E402
from runledger.restore import restore  # noqa: E402
from runledger.settings import Settings  # noqa: E402
from streams.contracts import Report, ReportBatch, StartExecution  # noqa: E402
from streams.machine import MachineConfig, decide  # noqa: E402

DB = "bench"


async def build_archive(ch: ClickHouse, topic: str, n: int) -> None:
    cfg = MachineConfig()
    now = int(time.time() * 1000)
    with Progress() as bar:
        task = bar.add_task("archive", total=n)
        for base in range(0, n, 2_000):
            events, journal = [], []
            for i in range(base, min(base + 2_000, n)):
                eid = f"rst_{i:06d}"
                d = decide(None, StartExecution(execution_id=eid, received_at=now,
                                                command_id=f"c{i}"), cfg)
                d2 = decide(d.state, ReportBatch(execution_id=eid, received_at=now, reports=(
                    Report(report_id=f"{eid}-a1", event_type="step_started", step_id="a",
                           timestamp=now),
                    Report(report_id=f"{eid}-a2", event_type="step_succeeded", step_id="a",
                           timestamp=now + 5))), cfg)  # fmt: skip
                events += [*d.events, *d2.events]
                late = ReportBatch(execution_id=eid, received_at=now + 10, reports=(
                    Report(report_id=f"{eid}-b1", event_type="step_started", step_id="b",
                           timestamp=now + 10),))  # fmt: skip
                journal.append([i + 1, now + 10, "default", "bench", "report", eid,
                                [f"{eid}-b1"], topic, late.model_dump_json()])
            await write_projection(ch, project(events, {}), database=DB)
            await ch.insert("journal", [list(c) for c in zip(*journal, strict=True)], COLUMNS,
                            database=DB)
            bar.update(task, advance=len(journal))


async def run(settings: Settings, ch: ClickHouse, n: int) -> dict:
    await migrate(ch, DB)
    await build_archive(ch, settings.topic("step-events"), n)
    await create_topics(settings)
    producer = make_producer(settings)
    await producer.start()
    with Progress() as bar:
        tasks = {"executions": bar.add_task("rehydrate", total=n),
                 "entries": bar.add_task("re-append", total=n)}  # fmt: skip

        def progress(phase: str, done: int, total: int) -> None:
            bar.update(tasks[phase], completed=done, total=total)

        report = await restore(settings, ch, producer, database=DB, progress=progress)
    await producer.stop()
    return {"executions": report.executions, "entries": report.entries,
            "seconds": round(report.seconds, 2), "entries_per_s": round(report.entries_per_s, 1)}


def main(executions: int = 10_000) -> None:
    with broker_and_clickhouse("restore") as (settings, ch):
        result = asyncio.run(run(settings, ch, executions))
        print(result, flush=True)
    print("BENCH " + orjson.dumps({"bench": "restore", "machine": machine(), **result}).decode())


if __name__ == "__main__":
    typer.run(main)
