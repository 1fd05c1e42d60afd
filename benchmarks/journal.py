"""Journal benchmark: what journaling costs the accept path, on the real broker and chDB.

(a) 5,000-event report batches (500 executions x 10 events, one message per execution,
    as the API sends them): published directly vs journaled then published;
(b) single-event requests from 64 concurrent callers through the journal's group commit;
(c) CPU per journal insert of 60 rows (a commit's size under one-event load), merges
    included, as the schema is and with the materialized views that read the journal up
    to migration 13 put back.

    python benchmarks/journal.py
Last line: BENCH {json}.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._harness import broker_and_clickhouse, cpu_seconds, machine  # noqa: E402
from projections.clickhouse import ClickHouse  # noqa: E402
from projections.definition_tables import V6_WORKFLOWS, V7_STEP_TYPES  # noqa: E402
from projections.journal import Entry, JournalWriter, insert_entries  # noqa: E402
from projections.schema import migrate  # noqa: E402
from runledger.kafka import create_topics, make_producer  # noqa: E402
from runledger.settings import Settings  # noqa: E402
from streams.contracts import Report, ReportBatch  # noqa: E402

BATCHES = 40


def _batch(topic: str) -> list[Entry]:
    now = int(time.time() * 1000)
    out = []
    for _ in range(500):
        eid = f"j_{uuid.uuid4().hex[:12]}"
        reports = tuple(Report(report_id=f"{eid}-{i}", event_type="step_succeeded",
                               step_id=f"s{i}", timestamp=now, data={"duration_ms": 5})
                        for i in range(10))  # fmt: skip
        body = ReportBatch(execution_id=eid, received_at=now, reports=reports)
        out.append(Entry(action="report", execution_id=eid, ids=tuple(r.report_id
                         for r in reports), topic=topic,
                         payload=body.model_dump_json().encode(), received_at=now))
    return out


async def run(settings: Settings, ch: ClickHouse) -> dict:
    await create_topics(settings)
    await migrate(ch, "bench")
    producer = make_producer(settings)
    await producer.start()
    topic = settings.topic("step-events")

    async def publish(records) -> None:
        futs = [await producer.send(t, v, key=k.encode()) for t, k, v in records]
        await asyncio.gather(*futs)

    batches = [_batch(topic) for _ in range(BATCHES * 2)]
    t0 = time.perf_counter()
    for b in batches[:BATCHES]:
        await publish([(e.topic, e.execution_id, e.payload) for e in b])
    direct_s = time.perf_counter() - t0

    journal = JournalWriter(ch, "bench", publish)
    await journal.start()
    t0 = time.perf_counter()
    for b in batches[BATCHES:]:
        await journal.append(b)
    journaled_s = time.perf_counter() - t0

    singles = [_batch(topic)[0] for _ in range(4)]
    n_single = 0
    t0 = time.perf_counter()
    deadline = t0 + 5.0

    async def caller() -> None:
        nonlocal n_single
        while time.perf_counter() < deadline:
            await journal.append([singles[n_single % 4]])
            n_single += 1

    await asyncio.gather(*(caller() for _ in range(64)))
    single_rate = n_single / (time.perf_counter() - t0)
    await journal.stop()
    await producer.stop()
    events = BATCHES * 5_000
    return {
        "direct_events_per_s": round(events / direct_s, 1),
        "journaled_events_per_s": round(events / journaled_s, 1),
        "journal_slowdown_pct": round((journaled_s / direct_s - 1) * 100, 1),
        "single_entry_appends_per_s": round(single_rate, 1),
        "journal_commits": journal.commits,
    }


async def insert_cpu_ms(ch: ClickHouse, db: str, views: bool, inserts: int = 300,
                        rows: int = 60) -> float:  # fmt: skip
    """CPU ms per journal insert as the journal writer makes them (dedup token and all),
    and the merges they cause in the 3 s after; ``views``: with the two materialized
    views that read the journal before migration 13 (each ran on every insert)."""
    await migrate(ch, db)
    if views:
        for view in (V6_WORKFLOWS[1], V7_STEP_TYPES[1]):
            await ch.command(view.format(db=db))
    payload = _batch("runledger.step-events")[0].payload
    pos, now = 1, int(time.time() * 1000)
    before = cpu_seconds(os.getpid())  # every thread: chDB's own too
    for _ in range(inserts):
        span = range(pos, pos + rows)
        entries = [Entry(action="report", execution_id=f"e{p % 1024}", ids=(f"r{p}",),
                         topic="runledger.step-events", payload=payload, received_at=now,
                         actor="bench") for p in span]  # fmt: skip
        await insert_entries(ch, db, entries, span, token=f"journal-{pos}-{pos + rows - 1}")
        pos += rows
    await asyncio.sleep(3)
    return round((cpu_seconds(os.getpid()) - before) / inserts * 1000, 2)


def main() -> None:
    with broker_and_clickhouse("journal") as (settings, ch):
        result = asyncio.run(run(settings, ch))
        result["insert_cpu_ms"] = asyncio.run(insert_cpu_ms(ch, "bench_nv", False))
        result["insert_cpu_ms_with_old_views"] = asyncio.run(insert_cpu_ms(ch, "bench_v", True))
        for k, v in result.items():
            print(f"{k}: {v}", flush=True)
    print("BENCH " + orjson.dumps({"bench": "journal", "machine": machine(), **result}).decode())


if __name__ == "__main__":
    main()
