"""Broker benchmark: how the embedded broker (Tansu, memory engine) degrades as ONE
partition grows — the case for topic generations (rolling over to fresh topics).

One 1-partition topic is filled with ~300 B keyed records (aiokafka, linger 5 ms, batches
up to --batch-kib) up to each checkpoint. At each checkpoint: latency of single-record
fetches (seek → first record) at random offsets and at the tail, the broker's RSS, and the
time to load a table from the whole partition as a restarted worker does (the bulk
preload of streams/preload.py, newest value per key). Then a fresh 1-partition topic of
1,000 records as the baseline, and the big topic is deleted to show the memory comes back.

    python benchmarks/broker.py [--checkpoints 1000000,5000000,10000000] [--batch-kib 256]
Last line: BENCH {json}.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import typer
from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.protocol.fetch import FetchRequest
from rich.progress import Progress

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._harness import free_port, machine  # noqa: E402
from runledger.broker import EmbeddedBroker  # noqa: E402
from runledger.generations import process_rss_mb  # noqa: E402
from runledger.kafka import make_consumer, make_producer, read_to_end  # noqa: E402
from runledger.settings import Settings  # noqa: E402

TAIL_SAMPLES = 20
FILLER = b"x" * 170  # brings a record to ~300 B with its JSON fields


def broker_rss_mb(pid: int) -> float:
    return round(process_rss_mb(pid) or 0.0, 1)


def record(i: int) -> tuple[bytes, bytes]:
    key = b"bench_%08d" % (i % 10_000)
    value = (b'{"execution_id":"%s","seq":%d,"event_type":"step_succeeded","ts":%d,"data":"%s"}'
             % (key, i, 1_700_000_000_000 + i, FILLER))
    return key, value


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 2)


async def create_topic(settings: Settings, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()


class BatchCounter:
    """Counts the record batches the producer sends (wraps its accumulator's drain)."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.batches = 0
        acc: Any = producer._message_accumulator
        drain = acc.drain_by_nodes

        def counted(*args: Any, **kw: Any) -> Any:
            nodes, unknown = drain(*args, **kw)
            self.batches += sum(len(by_tp) for by_tp in nodes.values())
            return nodes, unknown

        acc.drain_by_nodes = counted


async def produce(producer: AIOKafkaProducer, topic: str, start: int, end: int,
                  label: str) -> float:
    """Records [start, end) into ``topic``; returns records/s."""
    t0 = time.perf_counter()
    with Progress() as bar:
        task = bar.add_task(label, total=end - start)
        for base in range(start, end, 20_000):
            futs = []
            for i in range(base, min(base + 20_000, end)):
                key, value = record(i)
                futs.append(await producer.send(topic, value, key=key, partition=0))
            await asyncio.gather(*futs)
            bar.update(task, advance=len(futs))
    return (end - start) / (time.perf_counter() - t0)


async def fetch_latencies(settings: Settings, topic: str,
                          offsets: list[int]) -> tuple[list[float], list[float]]:
    """Milliseconds per single-record read, one at a time: (consumer, raw).

    consumer: aiokafka seek(offset) → getmany(max_records=1) returns that record, what a
    client sees (includes decoding the fetched batches up to the offset). raw: one Fetch
    request with max_bytes=1 (the broker still sends one whole batch, KIP-74) → response,
    i.e. the broker's share without client-side decoding.
    """
    tp = TopicPartition(topic, 0)
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    consumer.assign([tp])
    times: list[float] = []
    raw: list[float] = []
    try:
        for offset in [offsets[0], *offsets]:  # the first one warms the connection up
            t0 = time.perf_counter()
            consumer.seek(tp, offset)
            got = await consumer.getmany(tp, max_records=1, timeout_ms=30_000)
            times.append((time.perf_counter() - t0) * 1000)
            [rec] = got[tp]
            assert rec.offset == offset, (rec.offset, offset)
        client: Any = consumer._client
        node = client.cluster.leader_for_partition(tp)
        for offset in [offsets[0], *offsets]:
            request = FetchRequest(100, 0, 1, 0, [(topic, [(0, offset, 1)])])
            t0 = time.perf_counter()
            response = await client.send(node, request)
            raw.append((time.perf_counter() - t0) * 1000)
            assert response.topics[0][1][0][1] == 0, response  # error code
    finally:
        await consumer.stop()
    return times[1:], raw[1:]


async def table_load(settings: Settings, topic: str, n: int) -> tuple[float, int]:
    """Seconds to load a table from the partition as a restarted worker does (the bulk
    preload, streams/preload.py: ``read_to_end``, newest value per key), and its keys."""
    table: dict[bytes, bytes] = {}
    with Progress() as bar:
        task = bar.add_task(f"table load {n:,}", total=n)

        def apply(_tp: object, records: list[ConsumerRecord]) -> None:
            for r in records:
                if r.value is None:
                    table.pop(r.key, None)
                else:
                    table[r.key] = r.value
            bar.advance(task, len(records))

        t0 = time.perf_counter()
        await read_to_end(settings.bootstrap, [TopicPartition(topic, 0)], apply)
        elapsed = time.perf_counter() - t0
    return elapsed, len(table)


async def measure(settings: Settings, topic: str, n: int, samples: int,
                  rng: random.Random) -> dict[str, float]:
    offsets = [rng.randrange(n) for _ in range(samples)]
    rand, raw = await fetch_latencies(settings, topic, offsets)
    tail, _ = await fetch_latencies(settings, topic, [n - 1] * TAIL_SAMPLES)
    return {"fetch_p50_ms": pct(rand, 0.5), "fetch_p99_ms": pct(rand, 0.99),
            "fetch_mean_ms": round(statistics.mean(rand), 2), "tail_p50_ms": pct(tail, 0.5),
            "raw_fetch_p50_ms": pct(raw, 0.5), "raw_fetch_p99_ms": pct(raw, 0.99)}


async def run(broker: EmbeddedBroker, checkpoints: list[int], batch_kib: int,
              samples: int) -> dict[str, Any]:
    settings = Settings(kafka_bootstrap=broker.bootstrap, partitions=1)
    pid = broker.pid
    assert pid is not None
    rng = random.Random(42)
    topic, fresh = "bench.broker.big", "bench.broker.fresh"
    rss_start = broker_rss_mb(pid)
    print(f"broker pid {pid}, RSS at start {rss_start} MB", flush=True)
    await create_topic(settings, topic)
    producer = make_producer(settings, linger_ms=5, max_batch_size=batch_kib * 1024)
    await producer.start()
    counter = BatchCounter(producer)
    results: list[dict[str, Any]] = []
    done = 0
    try:
        for cp in checkpoints:
            rate = await produce(producer, topic, done, cp, f"produce → {cp:,}")
            done = cp
            figures = await measure(settings, topic, cp, samples, rng)
            rss = broker_rss_mb(pid)
            read_s, keys = await table_load(settings, topic, cp)
            row = {"records": cp, **figures, "broker_rss_mb": rss,
                   "table_load_s": round(read_s, 2), "table_load_per_s": round(cp / read_s),
                   "table_keys": keys, "batches": counter.batches,
                   "records_per_batch": round(cp / max(counter.batches, 1), 1),
                   "produce_per_s": round(rate)}
            results.append(row)
            print(f"{cp:>11,} records in {counter.batches:,} batches "
                  f"(~{row['records_per_batch']}/batch, produced at {rate:,.0f}/s): fetch p50 "
                  f"{row['fetch_p50_ms']} ms, p99 {row['fetch_p99_ms']} ms, tail p50 "
                  f"{row['tail_p50_ms']} ms; raw Fetch p50 {row['raw_fetch_p50_ms']} ms, p99 "
                  f"{row['raw_fetch_p99_ms']} ms | broker RSS {rss:,.0f} MB | table load "
                  f"{read_s:.1f} s ({row['table_load_per_s']:,} records/s, {keys:,} keys)",
                  flush=True)  # fmt: skip
        print("table load = a restarted worker's table recovery from a changelog partition "
              "of that size (the bulk preload; Faust's own recovery reads ~10k records/s)",
              flush=True)  # fmt: skip
        await create_topic(settings, fresh)
        await produce(producer, fresh, 0, 1_000, "fresh topic")
    finally:
        await producer.stop()
    baseline = await measure(settings, fresh, 1_000, samples, rng)
    print(f"fresh 1-partition topic, 1,000 records (big topic still there): fetch p50 "
          f"{baseline['fetch_p50_ms']} ms, p99 {baseline['fetch_p99_ms']} ms; raw Fetch p50 "
          f"{baseline['raw_fetch_p50_ms']} ms, p99 {baseline['raw_fetch_p99_ms']} ms", flush=True)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()
    await asyncio.sleep(5)
    rss_after = broker_rss_mb(pid)
    print(f"deleted {topic}: broker RSS {results[-1]['broker_rss_mb']:,.0f} → "
          f"{rss_after:,.0f} MB after 5 s", flush=True)
    last = results[-1]
    return {"records": last["records"], "fetch_p99_ms": last["fetch_p99_ms"],
            "broker_rss_mb": last["broker_rss_mb"], "raw_fetch_p99_ms": last["raw_fetch_p99_ms"],
            "fresh_fetch_p50_ms": baseline["fetch_p50_ms"],
            "fresh_fetch_p99_ms": baseline["fetch_p99_ms"],
            "fresh_raw_fetch_p99_ms": baseline["raw_fetch_p99_ms"],
            "broker_rss_start_mb": rss_start,
            "batch_kib": batch_kib, "checkpoints": results, "rss_after_delete_mb": rss_after}


def main(checkpoints: str = "1000000,5000000,10000000", batch_kib: int = 256,
         samples: int = 200) -> None:
    points = sorted(int(c) for c in checkpoints.split(","))
    root = Path(tempfile.mkdtemp(prefix="runledger-broker-bench-"))
    broker = EmbeddedBroker(free_port(), root / "broker.log")
    print(f"machine: {machine()}; broker log {broker.log_path}", flush=True)
    with broker:
        result = asyncio.run(run(broker, points, batch_kib, samples))
        if not broker.alive:
            print(f"broker died (exit {broker.returncode}); see {broker.log_path}", flush=True)
    print("BENCH " + orjson.dumps({"bench": "broker", "machine": machine(), **result}).decode())


if __name__ == "__main__":
    typer.run(main)
