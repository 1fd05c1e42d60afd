"""Ingest benchmark: raw broker baseline vs tracked ingest end to end, in one run.

(a) aiokafka produce + consume of N messages of the size a report message has, on the
    product's own broker; (b) N step events over `POST /api/v1/events` in batches until
    every execution is queryable from ClickHouse; freshness = 202 → visible in the detail;
(c) single-event requests on 64, 256 and 1,024 keep-alive connections, each count
    once what came before is applied and projected (else it measures that backlog too;
    the goal is met by the best of them: at 64 each request waits for a journal commit,
    so that count measures the commit's latency more than the product's capacity), one
    5,000-event request; (d) a paced phase at 75 % of
    min(--rate, what (b) reached), or at --fresh-rate: freshness (detail and summary)
    and WebSocket delivery to 100 subscribers; (e) a paced offer of --rate events/s for
    --seconds, until queryable (last: a backlog it leaves would be measured by what came
    after); the RSS of every product process at ready, after (d) and at the end. A run
    this short fills the product's bounded caches (and these executions never finish):
    whether memory levels off is benchmarks/memory.py's question.

    python benchmarks/ingest.py [--events 50000] [--batch 1000] [--rate 20000]
                                [--seconds 60] [--also-target-75] [--fresh-rate R]
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
from benchmarks import _ingest_probes as probes  # noqa: E402
from benchmarks._harness import (  # noqa: E402
    machine,
    rss_report,
    rss_snapshot,
    running_product,
)
from benchmarks._ingest_probes import STEPS, _events_for  # noqa: E402
from runledger.kafka import make_consumer, make_producer  # noqa: E402
from runledger.settings import Settings  # noqa: E402


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


async def single_event_rate(base_url: str, connections: int, seconds: float = 5.0,
                            path: str = "/api/v1/events") -> tuple[float, float]:  # fmt: skip
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
                writer.write(b"POST %s HTTP/1.1\r\nHost: bench\r\nContent-Type: "
                             b"application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (path.encode(), len(body), body))  # fmt: skip
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


async def settle(base_url: str, executions: int = 100) -> float:
    """Wait until what came before is applied and projected: a batch of ``executions``
    (on every partition, in all likelihood) must show every event. Returns the seconds."""
    eids = probes.new_ids(executions, "settle")
    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        r = await client.post("/api/v1/events", content=orjson.dumps(
            {"events": [e for eid in eids for e in _events_for(eid)]}), headers=probes.JSON)
        r.raise_for_status()
        await probes.wait_queryable(client, eids)
    return time.perf_counter() - t0


async def sustained(base_url: str, rate: float, seconds: float, batch: int) -> dict:
    """Offer ``rate`` events/s for ``seconds``, then wait until every execution is
    queryable (the last of each batch and 100 at random: detail shows every event)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        run = await probes.paced(client, rate, seconds, batch)
        acc = run.accepted_events()
        print(f"  offered {rate:,.0f} events/s for {seconds:.0f}s: sent "
              f"{len(run.batches)}/{run.planned} batches, {run.failed} not accepted, accepted "
              f"{acc:,} events = {run.accepted_rate():,.0f} events/s", flush=True)
        ids = probes.sample_ids(run.accepted)
        seen, last = await probes.wait_queryable(client, ids)
    done = seen == len(ids) and acc > 0
    # not all queryable in time: the share seen over the whole wait, a lower bound
    e2e = acc / (last - run.t0) if done else acc * seen / max(len(ids), 1) / (
        time.perf_counter() - run.t0)  # fmt: skip
    return {"sustained_offered_events_per_s": round(rate, 1), "sustained_seconds": seconds,
            "sustained_accepted_events_per_s": round(run.accepted_rate(), 1),
            "sustained_events_per_s": round(e2e, 1), "sustained_all_queryable": done,
            "sustained_failed_requests": run.failed,
            "sustained_held": run.accepted_rate() >= 0.95 * rate}  # fmt: skip


async def fresh_and_live(base_url: str, rate: float, seconds: float, batch: int,
                         subscribers: int = 100) -> dict:  # fmt: skip
    """A paced phase at ``rate``: freshness (202 → detail and summary both show every
    event) of the last execution of each batch, and WebSocket delivery to ``subscribers``
    clients, each subscribed to an execution sent during the phase."""
    per_batch = max(batch // probes.PER_EXEC, 1)
    planned = probes.planned_batches(rate, seconds, batch)
    live = probes.Live(base_url, probes.new_ids(subscribers, "ws"))
    await live.open()
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        fresh = probes.Freshness(client)

        def accepted(b: probes.Batch) -> None:
            fresh.on_accept(b)
            live.on_accept(b)

        run = await probes.paced(client, rate, seconds, batch,
                                 probes.spread(live.eids, planned, per_batch), accepted)
        await fresh.wait()
        ws = await live.close()
    return {"rate_events_per_s": round(rate, 1),
            "accepted_events_per_s": round(run.accepted_rate(), 1),
            "freshness_samples": len(fresh.samples), "freshness_expected": len(fresh.tasks),
            "freshness_p50_ms": probes.pct_ms(fresh.samples, 0.5),
            "freshness_p99_ms": probes.pct_ms(fresh.samples, 0.99), **ws}


SINGLE_EVENT_CONNECTIONS = (64, 256, 1024)


def main(events: int = 50_000, batch: int = 1_000, rate: float = 20_000.0,
         seconds: float = 60.0, also_target_75: bool = False, fresh_rate: float = 0.0,
         ) -> None:  # fmt: skip
    """Phases, the overloading one last: what runs after a backlog measures the backlog."""
    with running_product() as (settings, base_url):
        print(f"machine: {machine()}", flush=True)
        rss_start = rss_snapshot()
        raw = asyncio.run(raw_baseline(settings, events // (STEPS * 2), 1_600))
        baseline = raw["msgs_per_s"]
        print(f"raw broker, one message per execution (~1.6 kB, as the API sends): "
              f"produce {raw['produce_msgs_per_s']:,.0f} msg/s, consume "
              f"{raw['consume_msgs_per_s']:,.0f} msg/s, both {baseline:,.0f} msg/s "
              f"= {baseline * STEPS * 2:,.0f} events/s", flush=True)
        e2e = asyncio.run(end_to_end(base_url, events, batch))
        print(f"end to end: {e2e}", flush=True)
        single = {}
        for connections in SINGLE_EVENT_CONNECTIONS:
            waited = asyncio.run(settle(base_url))
            rate_s, p99 = asyncio.run(single_event_rate(base_url, connections))
            single[connections] = rate_s
            print(f"single-event requests ({connections} keep-alive connections, after "
                  f"{waited:.1f}s for the phase before to be applied): {rate_s:,.0f} req/s, "
                  f"p99 {p99:.0f} ms", flush=True)
        big_ms = asyncio.run(big_batch_latency(base_url))
        print(f"one 5,000-event request (sequential): {big_ms:.1f} ms", flush=True)
        print(f"settled (the backlog of the phases before applied) in "
              f"{asyncio.run(settle(base_url)):.1f}s", flush=True)
        r75 = fresh_rate or 0.75 * min(rate, e2e["events_per_s"])
        print(f"75 % of the target rate would be {0.75 * rate:,.0f} events/s; running at "
              + (f"--fresh-rate {r75:,.0f}" if fresh_rate else f"75 % of min(target, the "
                 f"burst's end to end) = {r75:,.0f}") + " events/s", flush=True)
        f75 = asyncio.run(fresh_and_live(base_url, r75, seconds, batch))
        probes.print_fresh("paced phase", f75)
        rss_warm = rss_snapshot()
        print(f"sustained: offering {rate:,.0f} events/s for {seconds:.0f}s, batches of "
              f"{batch}, {probes.IN_FLIGHT} in flight", flush=True)
        sus = asyncio.run(sustained(base_url, rate, seconds, batch))
        print(f"sustained: offered {rate:,.0f}/s, accepted "
              f"{sus['sustained_accepted_events_per_s']:,.0f}/s, end to end "
              f"{sus['sustained_events_per_s']:,.0f}/s (all queryable: "
              f"{sus['sustained_all_queryable']}); held {seconds:.0f}s at ≥ 95 % of the offer: "
              f"{sus['sustained_held']}", flush=True)
        extra = {}
        if also_target_75:
            ft = asyncio.run(fresh_and_live(base_url, 0.75 * rate, seconds, batch))
            probes.print_fresh("at 75 % of target", ft)
            extra = {f"target75_{k}": v for k, v in ft.items()}
        print("memory of the product's processes (MB), start (ready) → after the paced phase "
              "→ end (after the sustained offer):", flush=True)
        rss = rss_report(rss_start, rss_warm, rss_snapshot())
    result = {"bench": "ingest", "machine": machine(), **e2e,
              "single_event_req_per_s": round(single[64], 1),
              "single_event_req_per_s_256": round(single[256], 1),
              "single_event_req_per_s_1024": round(single[1024], 1),
              "batch_5000_request_ms": round(big_ms, 1),
              "baseline_msgs_per_s": round(baseline, 1),
              "baseline_events_per_s": round(baseline * STEPS * 2, 1),
              "ratio": round(e2e["events_per_s"] / (baseline * STEPS * 2), 4), "batch": batch,
              **sus, **{f"fresh75_{k}": v for k, v in f75.items()}, **extra,
              "rss_mb": rss, "pid": os.getpid()}  # fmt: skip
    result["targets_met"] = probes.verdicts(result)
    word = {True: "MET", False: "missed", None: "n/a (not run at 75 % of 20,000/s)"}
    print("targets: " + ", ".join(f"{k} {word[v]}" for k, v in result["targets_met"].items()),
          flush=True)
    print("BENCH " + orjson.dumps(result).decode())


if __name__ == "__main__":
    typer.run(main)
