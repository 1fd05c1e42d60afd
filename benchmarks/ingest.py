"""Ingest benchmark: raw broker baseline vs tracked ingest end to end, in one run.

(a) aiokafka produce + consume of N messages of the size a report message has, on the
    product's own broker; (b) N step events over `POST /api/v1/events` in batches until
    every execution is queryable from ClickHouse; freshness = 202 → visible in the detail.

    python benchmarks/ingest.py [--events 50000] [--batch 1000]
Last line: BENCH {json}.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import typer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._harness import machine, running_product  # noqa: E402
from runledger.kafka import make_consumer, make_producer  # noqa: E402
from runledger.settings import Settings  # noqa: E402

STEPS = 5  # 10 reported events per execution: started + succeeded per step


def _events_for(eid: str) -> list[dict]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    out = []
    for i in range(STEPS):
        for kind in ("step_started", "step_succeeded"):
            out.append({"event_id": f"{eid}-{i}-{kind}", "execution_id": eid,
                        "event_type": kind, "step_id": f"step_{i}", "system": f"S{i % 3}",
                        "module": f"M{i}", "timestamp": now, "data": {"duration_ms": 5}})
    return out


async def raw_baseline(settings: Settings, n: int, size: int) -> dict[str, float]:
    """Produce then consume n messages of ``size`` bytes, keyed like the product's."""
    from aiokafka import TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = settings.topic("bench-raw")
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, settings.partitions, 1)])
    await admin.close()
    producer = make_producer(settings, linger_ms=20)
    await producer.start()
    payload = b"x" * size
    t0 = time.perf_counter()
    futs = [await producer.send(topic, payload, key=f"k{i % 10_000}".encode()) for i in range(n)]
    await asyncio.gather(*futs)
    produce_s = time.perf_counter() - t0
    await producer.stop()
    consumer = make_consumer(settings, group_id=None)  # manual assignment: no group join
    await consumer.start()
    consumer.assign([TopicPartition(topic, p) for p in range(settings.partitions)])
    await consumer.seek_to_beginning()
    got = 0
    t1 = time.perf_counter()
    while got < n:
        batches = await consumer.getmany(timeout_ms=500, max_records=5000)
        got += sum(len(v) for v in batches.values())
    consume_s = time.perf_counter() - t1
    await consumer.stop()
    return {"produce_msgs_per_s": n / produce_s, "consume_msgs_per_s": n / consume_s,
            "msgs_per_s": n / (produce_s + consume_s)}


async def end_to_end(base_url: str, n_events: int, batch: int) -> dict:
    per_exec = STEPS * 2
    executions = [f"bench_{uuid.uuid4().hex[:16]}" for _ in range(max(n_events // per_exec, 1))]
    per_batch = max(batch // per_exec, 1)
    accepted_at: dict[str, float] = {}
    fresh: list[float] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        t0 = time.perf_counter()

        async def send(chunk: list[str]) -> None:
            evs = [e for eid in chunk for e in _events_for(eid)]
            r = await client.post("/api/v1/events", content=orjson.dumps({"events": evs}),
                                  headers={"content-type": "application/json"})
            r.raise_for_status()
            accepted_at[chunk[-1]] = time.perf_counter()

        chunks = [executions[i:i + per_batch] for i in range(0, len(executions), per_batch)]
        sem = asyncio.Semaphore(4)

        async def guarded(chunk: list[str]) -> None:
            async with sem:
                await send(chunk)

        async def poll_freshness() -> None:
            pending = set()
            while True:
                pending |= {eid for eid in accepted_at if eid not in seen}
                for eid in list(pending):
                    r = await client.get(f"/api/v1/executions/{eid}")
                    body = r.json().get("data") or {}
                    if body.get("last_seq") == per_exec + 1:
                        fresh.append(time.perf_counter() - accepted_at[eid])
                        pending.discard(eid)
                        seen.add(eid)
                if len(seen) == len(chunks):
                    return
                await asyncio.sleep(0.05)

        seen: set[str] = set()
        poller = asyncio.create_task(poll_freshness())
        await asyncio.gather(*(guarded(c) for c in chunks))
        accept_s = time.perf_counter() - t0
        print(f"accepted {len(executions) * per_exec} events in {accept_s:.2f}s", flush=True)
        await asyncio.wait_for(poller, 600)
        total_s = time.perf_counter() - t0
    fresh.sort()
    return {
        "events": len(executions) * per_exec,
        "events_per_s": round(len(executions) * per_exec / total_s, 1),
        "accept_events_per_s": round(len(executions) * per_exec / accept_s, 1),
        "freshness_p50_ms": round(statistics.median(fresh) * 1000, 1),
        "freshness_p99_ms": round(fresh[min(len(fresh) - 1, int(len(fresh) * 0.99))] * 1000, 1),
    }


async def single_event_rate(base_url: str, connections: int, seconds: float = 5.0
                            ) -> tuple[float, float]:  # fmt: skip
    """One-event `POST /events` requests, back to back on each of ``connections`` keep-alive
    connections: (requests/s, p99 ms). A bare HTTP/1.1 client on asyncio streams: httpx
    took ~80 % of a core for ~350 req/s here (stop 18), on the cores the product runs on."""
    url = httpx.URL(base_url)
    run = uuid.uuid4().hex[:8]
    latencies: list[float] = []

    async def loop(conn: int) -> None:
        reader, writer = await asyncio.open_connection(url.host, url.port)
        try:
            i = 0
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                body = orjson.dumps({"events": [{
                    "event_id": f"single_{run}_{conn}_{i}", "execution_id": f"single_{run}_{conn}",
                    "event_type": "log", "timestamp": datetime.now(UTC).isoformat(),
                    "message": "tick"}]})  # fmt: skip
                t0 = time.perf_counter()
                writer.write(b"POST /api/v1/events HTTP/1.1\r\nHost: bench\r\nContent-Type: "
                             b"application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(body), body))  # fmt: skip
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))  # fmt: skip
                await reader.readexactly(length)
                if not head.startswith(b"HTTP/1.1 202"):
                    raise RuntimeError(f"not accepted: {head[:200]!r}")
                latencies.append((time.perf_counter() - t0) * 1000)
                i += 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(loop(c) for c in range(connections)))
    rate = len(latencies) / (time.perf_counter() - t0)
    return rate, statistics.quantiles(latencies, n=100)[98]


async def big_batch_latency(base_url: str, n: int = 10) -> float:
    """Mean time of one 5,000-event `POST /events`, requests one after another (ms)."""
    times = []
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        for _ in range(n):
            eids = [f"big_{uuid.uuid4().hex[:16]}" for _ in range(500)]
            body = orjson.dumps({"events": [e for eid in eids for e in _events_for(eid)]})
            t0 = time.perf_counter()
            r = await client.post("/api/v1/events", content=body,
                                  headers={"content-type": "application/json"})
            r.raise_for_status()
            times.append(time.perf_counter() - t0)
    return statistics.mean(times) * 1000


def main(events: int = 50_000, batch: int = 1_000) -> None:
    with running_product() as (settings, base_url):
        print(f"machine: {machine()}", flush=True)
        raw = asyncio.run(raw_baseline(settings, events // (STEPS * 2), 1_600))
        baseline = raw["msgs_per_s"]
        print(f"raw broker, one message per execution (~1.6 kB, as the API sends): "
              f"produce {raw['produce_msgs_per_s']:,.0f} msg/s, consume "
              f"{raw['consume_msgs_per_s']:,.0f} msg/s, both {baseline:,.0f} msg/s "
              f"= {baseline * STEPS * 2:,.0f} events/s", flush=True)
        e2e = asyncio.run(end_to_end(base_url, events, batch))
        print(f"end to end: {e2e}", flush=True)
        single = {}
        for connections in (64, 256):
            rate, p99 = asyncio.run(single_event_rate(base_url, connections))
            single[connections] = rate
            print(f"single-event requests ({connections} keep-alive connections): "
                  f"{rate:,.0f} req/s, p99 {p99:.0f} ms", flush=True)
        big_ms = asyncio.run(big_batch_latency(base_url))
        print(f"one 5,000-event request (sequential): {big_ms:.1f} ms", flush=True)
    result = {"bench": "ingest", "machine": machine(), **e2e,
              "single_event_req_per_s": round(single[64], 1),
              "single_event_req_per_s_256": round(single[256], 1),
              "batch_5000_request_ms": round(big_ms, 1),
              "baseline_msgs_per_s": round(baseline, 1),
              "baseline_events_per_s": round(baseline * STEPS * 2, 1),
              "ratio": round(e2e["events_per_s"] / (baseline * STEPS * 2), 4), "batch": batch,
              "pid": os.getpid()}
    print("BENCH " + orjson.dumps(result).decode())


if __name__ == "__main__":
    typer.run(main)
