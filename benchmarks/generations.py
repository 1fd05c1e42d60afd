"""Soak: millions of reported step events through `make run`, across generation switches.

Starts the product (embedded broker, chDB) with a generation threshold, posts tracked
executions (10 step events each, batches of 1,000) as fast as it takes them, and watches
the generation switches. Afterwards: the broker's RSS, fetch latency on the current
events topic against a fresh topic, how long a SIGKILLed worker takes to apply work again
(its table recovered), and — with the product stopped — that every execution's events
are in ClickHouse, gapless. Last line `BENCH {json}`.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import time
import uuid
from pathlib import Path

import httpx
import orjson
import typer
from aiokafka import TopicPartition
from rich.progress import Progress

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._harness import machine, running_product  # noqa: E402
from benchmarks.broker import (  # noqa: E402
    broker_rss_mb,
    create_topic,
    fetch_latencies,
    pct,
    produce,
)
from benchmarks.ingest import STEPS, _events_for  # noqa: E402
from runledger import generations  # noqa: E402
from runledger.kafka import make_producer  # noqa: E402
from runledger.settings import Settings  # noqa: E402

PER_EXECUTION = STEPS * 2 + 1  # execution_created + started/succeeded per step


def _pids(needle: str, kafka_port: int) -> list[int]:
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


async def _load(base_url: str, executions: int, per_batch: int, prefix: str) -> dict:
    """Post every execution's events; sample the generation while doing it."""
    generations: list[dict] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
        sem = asyncio.Semaphore(4)
        slowest = 0.0

        async def send(first: int) -> None:
            nonlocal slowest
            eids = [f"{prefix}_{i}" for i in range(first, min(first + per_batch, executions))]
            body = orjson.dumps({"events": [e for eid in eids for e in _events_for(eid)]})
            async with sem:
                t0 = time.perf_counter()
                r = await client.post("/api/v1/events", content=body,
                                      headers={"content-type": "application/json"})
                slowest = max(slowest, time.perf_counter() - t0)
            r.raise_for_status()
            bar.advance(task, len(eids) * STEPS * 2)

        async def watch() -> None:
            while True:
                g = (await client.get("/api/v1/stats/realtime")).json()["data"]["generation"]
                if not generations or g["switches"] != generations[-1]["switches"]:
                    if g["last_switch"]:
                        print(f"generation {g['number']}: {g['last_switch']}", flush=True)
                    generations.append(g)
                await asyncio.sleep(2)

        t0 = time.perf_counter()
        with Progress() as bar:
            task = bar.add_task("step events", total=executions * STEPS * 2)
            watcher = asyncio.create_task(watch())
            for first in range(0, executions, per_batch * 8):
                await asyncio.gather(*(send(f) for f in range(
                    first, min(first + per_batch * 8, executions), per_batch)))
        accept_s = time.perf_counter() - t0
        # Applied and projected: the last 50 posted (the exact check over all comes after)
        waiting = [f"{prefix}_{i}" for i in range(max(executions - 50, 0), executions)]
        while waiting:
            r = await client.get(f"/api/v1/executions/{waiting[-1]}")
            if r.json().get("data", {}).get("last_seq") == PER_EXECUTION:
                waiting.pop()
            else:
                await asyncio.sleep(0.5)
        total_s = time.perf_counter() - t0
        await asyncio.sleep(3)
        watcher.cancel()
        g = (await client.get("/api/v1/stats/realtime")).json()["data"]["generation"]
    return {"accept_s": round(accept_s, 1), "total_s": round(total_s, 1),
            "events_per_s": round(executions * STEPS * 2 / total_s),
            "slowest_request_s": round(slowest, 2), "final": g,
            "switches": [x["last_switch"] for x in generations[1:]] + (
                [g["last_switch"]] if g["switches"] > len(generations) - 1 else [])}


async def _fetch(settings: Settings) -> dict:
    """Single-record fetches at random offsets of the current events topic's partition 0,
    and of a fresh 1,000-record topic on the same broker."""
    topic = settings.topic("events")
    ends = await generations.end_offsets(settings, [topic])
    end = ends.get(TopicPartition(topic, 0), 0)
    times, raw = await fetch_latencies(settings, topic, [random.randrange(end)
                                                         for _ in range(200)]) if end else ([], [])
    fresh = f"bench-fresh-{uuid.uuid4().hex[:6]}"
    await create_topic(settings, fresh)
    producer = make_producer(settings)
    await producer.start()
    await produce(producer, fresh, 0, 1_000, "fresh topic")
    await producer.stop()
    ftimes, fraw = await fetch_latencies(settings, fresh,
                                         [random.randrange(1_000) for _ in range(200)])
    return {"partition0_records": end,
            "fetch_p50_ms": pct(times, 0.5) if times else None,
            "fetch_p99_ms": pct(times, 0.99) if times else None,
            "raw_fetch_p99_ms": pct(raw, 0.99) if raw else None,
            "fresh_fetch_p50_ms": pct(ftimes, 0.5), "fresh_fetch_p99_ms": pct(ftimes, 0.99),
            "fresh_raw_fetch_p99_ms": pct(fraw, 0.99)}


def _worker_restart(base_url: str, kafka_port: int) -> float:
    """SIGKILL the worker; seconds until a new execution's events are applied again."""
    [pid] = _pids("runledger.cli worker", kafka_port)
    eid = f"restart_{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    os.kill(pid, signal.SIGKILL)
    with httpx.Client(base_url=base_url, timeout=60) as client:
        r = client.post("/api/v1/events", json={"events": _events_for(eid)})
        r.raise_for_status()
        while client.get(f"/api/v1/executions/{eid}").json().get(
                "data", {}).get("last_seq") != PER_EXECUTION:
            time.sleep(0.1)
    return round(time.perf_counter() - t0, 2)


def _gapless(data_dir: Path, executions: int) -> dict:
    from projections.clickhouse import ClickHouse

    ch = ClickHouse(f"chdb://{data_dir / 'clickhouse'}")
    try:
        rows = asyncio.run(ch.query(
            "SELECT count() AS n, countIf(c != m OR u != m OR lo != 1) AS broken, "
            "countIf(m != {per:UInt32}) AS incomplete FROM (SELECT execution_id, "
            "count() AS c, uniqExact(seq) AS u, max(seq) AS m, min(seq) AS lo "
            "FROM runledger.events FINAL WHERE execution_id LIKE 'soak\\\\_%' "
            "GROUP BY execution_id)", {"per": PER_EXECUTION}))
    finally:
        ch.close()
    r = rows[0]
    return {"executions_found": int(r["n"]), "expected": executions,
            "with_gaps_or_doubles": int(r["broken"]), "incomplete": int(r["incomplete"])}


def main(
    events: int = typer.Option(5_000_000, help="reported step events in all"),
    max_records: int = typer.Option(1_000_000, help="RUNLEDGER_GENERATION_MAX_RECORDS"),
    batch: int = typer.Option(1_000, help="step events per request"),
) -> None:
    executions = events // (STEPS * 2)
    print(f"machine: {machine()}; {executions:,} executions, {events:,} step events, "
          f"generation threshold {max_records:,} records", flush=True)
    env = {"RUNLEDGER_GENERATION_MAX_RECORDS": str(max_records),
           "RUNLEDGER_GENERATION_CHECK_INTERVAL": "5"}
    with running_product(**env) as (settings, base_url):
        data_dir = settings.data_dir
        kafka_port = int(settings.bootstrap.rsplit(":", 1)[1])
        load = asyncio.run(_load(base_url, executions, batch // (STEPS * 2), "soak"))
        gen = load["final"]["number"]
        print(f"load: {json.dumps({k: v for k, v in load.items() if k != 'switches'})}")
        [broker_pid] = _pids("tansu", kafka_port) or [0]
        rss = broker_rss_mb(broker_pid) if broker_pid else None
        fetch = asyncio.run(_fetch(settings.at_generation(gen)))
        print(f"broker RSS {rss} MB; fetch {fetch}", flush=True)
        restart_s = _worker_restart(base_url, kafka_port)
        print(f"worker SIGKILL → applying again after {restart_s}s", flush=True)
    check = _gapless(data_dir, executions)
    print(f"archive check: {check}", flush=True)
    result = {"bench": "generations", "machine": machine(), "events": events,
              "executions": executions, "max_records": max_records,
              "switches": len(load["switches"]), "generation": gen, "broker_rss_mb": rss,
              **fetch, "worker_restart_s": restart_s, **check,
              **{k: load[k] for k in ("events_per_s", "accept_s", "total_s",
                                      "slowest_request_s")},
              "switch_timings": load["switches"]}  # fmt: skip
    print("BENCH " + json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    typer.run(main)
