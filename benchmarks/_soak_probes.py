"""What the generations soak reads from outside the product: its processes, its log (the
switches' step timings, the table loads), its archive in ClickHouse (every execution's
events gapless), and fetch latency on its broker against a fresh topic."""

from __future__ import annotations

import ast
import asyncio
import json
import random
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from benchmarks.broker import create_topic, fetch_latencies, pct
from runledger import generations
from runledger.kafka import make_consumer, make_producer
from runledger.settings import Settings


def pids(needle: str, kafka_port: int) -> list[int]:
    """Processes of this product run (by its broker port) whose command line has needle."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            env = (entry / "environ").read_bytes()
        except OSError:
            continue
        port_env = f"RUNLEDGER_KAFKA_PORT={kafka_port}".encode()
        if needle in cmd and (port_env in env or f":{kafka_port}" in cmd):
            out.append(int(entry.name))
    return out


async def fetch_vs_fresh(settings: Settings) -> dict:
    """Single-record fetches at random offsets of the current events topic's partition 0,
    and of a fresh topic holding a copy of its first 1,000 records at most (sent the way
    the worker sends them: zstd, linger), on the same broker."""
    topic = settings.topic("events")
    ends = await generations.end_offsets(settings, [topic])
    end = ends.get(TopicPartition(topic, 0), 0)
    if not end:
        return {"partition0_records": 0}
    times, raw = await fetch_latencies(settings, topic, [random.randrange(end)
                                                         for _ in range(200)])  # fmt: skip
    fresh = f"bench-fresh-{uuid.uuid4().hex[:6]}"
    await create_topic(settings, fresh)
    copied = await copy_records(settings, TopicPartition(topic, 0), fresh, min(end, 1_000))
    ftimes, fraw = await fetch_latencies(settings, fresh,
                                         [random.randrange(copied) for _ in range(200)])
    return {"partition0_records": end, "fetch_p50_ms": pct(times, 0.5),
            "fetch_p99_ms": pct(times, 0.99), "raw_fetch_p99_ms": pct(raw, 0.99),
            "fresh_records": copied, "fresh_fetch_p50_ms": pct(ftimes, 0.5),
            "fresh_fetch_p99_ms": pct(ftimes, 0.99), "fresh_raw_fetch_p99_ms": pct(fraw, 0.99)}


async def copy_records(settings: Settings, source: TopicPartition, target: str, n: int) -> int:
    """Copy the first ``n`` records of ``source`` into partition 0 of ``target``."""
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    consumer.assign([source])
    consumer.seek(source, 0)
    producer = make_producer(settings)
    await producer.start()
    sent: list[asyncio.Future[Any]] = []
    try:
        while len(sent) < n:
            batch = await consumer.getmany(source, max_records=n - len(sent), timeout_ms=5_000)
            for rec in batch.get(source, []):
                sent.append(await producer.send(target, rec.value, key=rec.key, partition=0))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
        await consumer.stop()
    return len(sent)


def switch_timings(log_path: Path) -> list[dict]:
    """Each generation switch's step timings, as the API logged them."""
    out = []
    for line in log_path.read_text(errors="replace").splitlines():
        if '"runledger.api.generation"' in line and "now on generation" in line:
            msg = json.loads(line)["msg"]
            out.append(ast.literal_eval(msg[msg.index("(") + 1:msg.rindex(")")]))
    return out


def table_loads(log_path: Path) -> list[float]:
    """Seconds each table load took, from the product's log: a worker's bulk preload of its
    changelog (streams.app.PreloadedMemoryStore), or Faust's own recovery where it ran."""
    out, began = [], None
    for line in log_path.read_text(errors="replace").splitlines():
        if "table preloaded:" in line:
            msg = json.loads(line)["msg"]
            out.append(float(msg.rsplit(" in ", 1)[1].rstrip("s")))
        elif "Restoring state from changelog topics" in line:
            began = datetime.fromisoformat(json.loads(line)["ts"])
        elif "Recovery complete" in line and began is not None:
            out.append(round((datetime.fromisoformat(json.loads(line)["ts"]) - began)
                             .total_seconds(), 2))  # fmt: skip
            began = None
    return out


def gapless(data_dir: Path, executions: int, per_execution: int) -> dict:
    from projections.clickhouse import ClickHouse

    ch = ClickHouse(f"chdb://{data_dir / 'clickhouse'}")
    try:
        rows = asyncio.run(ch.query(
            "SELECT count() AS n, countIf(c != m OR u != m OR lo != 1) AS broken, "
            "countIf(m != {per:UInt32}) AS incomplete FROM (SELECT execution_id, "
            "count() AS c, uniqExact(seq) AS u, max(seq) AS m, min(seq) AS lo "
            "FROM runledger.events FINAL WHERE execution_id LIKE 'soak\\\\_%' "
            "GROUP BY execution_id)", {"per": per_execution}))
    finally:
        ch.close()
    r = rows[0]
    return {"executions_found": int(r["n"]), "expected": executions,
            "with_gaps_or_doubles": int(r["broken"]), "incomplete": int(r["incomplete"])}
