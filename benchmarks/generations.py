"""Soak: millions of reported step events through `make run`, across generation switches.

Starts the product (embedded broker, chDB) with a generation threshold and posts tracked
executions (10 step events each, then execution_completed unless --unfinished; batches
of 1,000) as fast as it takes them. Afterwards: every switch's step timings (from the
API's log), the broker's RSS, fetch latency on the current events topic against a fresh
topic, how long a worker stopped by SIGTERM and by SIGKILL takes to apply work again
(the table load times from the log), fetch latency on the current generation sampled
during the load; then the quiet switch after it (``--quiet-seconds``), the broker's RSS
and fetch latency on the generation after it (with 1,000 more executions) against a
fresh topic; and, with the product stopped, that every execution's events are in
ClickHouse, gapless. Last line `BENCH {json}`."""

from __future__ import annotations

import asyncio
import contextlib
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
from benchmarks._ingest_probes import STEPS, _events_for, finished_reports  # noqa: E402
from benchmarks._soak_probes import (  # noqa: E402
    fetch_vs_fresh,
    gapless,
    pids,
    switch_timings,
    table_loads,
)
from benchmarks.broker import (  # noqa: E402
    broker_rss_mb,
    fetch_latencies,
    pct,
)
from runledger import generations  # noqa: E402
from runledger.settings import Settings  # noqa: E402


def _reports(eid: str, finish: bool) -> list[dict]:
    """One execution's step events, and (``finish``) the reported end of it."""
    return finished_reports(eid) if finish else _events_for(eid)


def _per_execution(finish: bool) -> int:
    """Events per execution: created, started/succeeded per step, completed."""
    return STEPS * 2 + 1 + int(finish)


async def _sample_fetches(settings: Settings, client: httpx.AsyncClient, every: float,
                          out: list[dict], stop: asyncio.Event) -> None:  # fmt: skip
    """Every ``every`` s: fetch latency on the current generation's events partition 0 and
    its size, to show the cost growing within a generation and falling at a switch."""
    while not stop.is_set():
        g = (await client.get("/api/v1/stats/realtime")).json()["data"]["generation"]
        gen = settings.at_generation(g["number"])
        topic = gen.topic("events")
        try:
            end = (await generations.end_offsets(gen, [topic])).get(TopicPartition(topic, 0), 0)
            if end:
                times, raw = await fetch_latencies(gen, topic, [random.randrange(end)
                                                                for _ in range(50)])  # fmt: skip
                out.append({"generation": g["number"], "partition0_records": end,
                            "fetch_p99_ms": pct(times, 0.99), "raw_fetch_p99_ms": pct(raw, 0.99)})
        except Exception:  # noqa: BLE001 - a switch deleted the topic meanwhile
            pass
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


async def _load(base_url: str, settings: Settings, executions: int, per_batch: int,
                prefix: str, finish: bool, sample_every: float) -> dict:  # fmt: skip
    """Post every execution's events; wait until they are applied."""
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
        samples: list[dict] = []
        stop = asyncio.Event()
        sampler = asyncio.create_task(_sample_fetches(settings, client, sample_every, samples,
                                                      stop))  # fmt: skip
        sem = asyncio.Semaphore(4)
        slowest = 0.0

        async def send(first: int) -> None:
            nonlocal slowest
            eids = [f"{prefix}_{i}" for i in range(first, min(first + per_batch, executions))]
            body = orjson.dumps({"events": [e for eid in eids for e in _reports(eid, finish)]})
            async with sem:
                t0 = time.perf_counter()
                r = await client.post("/api/v1/events", content=body,
                                      headers={"content-type": "application/json"})
                slowest = max(slowest, time.perf_counter() - t0)
            r.raise_for_status()
            bar.advance(task, len(eids) * STEPS * 2)

        t0 = time.perf_counter()
        with Progress() as bar:
            task = bar.add_task("step events", total=executions * STEPS * 2)
            for first in range(0, executions, per_batch * 8):
                await asyncio.gather(*(send(f) for f in range(
                    first, min(first + per_batch * 8, executions), per_batch)))
        accept_s = time.perf_counter() - t0
        # Applied and projected: the last 50 posted (the exact check over all comes after)
        waiting = [f"{prefix}_{i}" for i in range(max(executions - 50, 0), executions)]
        while waiting:
            r = await client.get(f"/api/v1/executions/{waiting[-1]}")
            if r.json().get("data", {}).get("last_seq") == _per_execution(finish):
                waiting.pop()
            else:
                await asyncio.sleep(0.5)
        total_s = time.perf_counter() - t0
        # A switch that came due at the end runs now: measure the generation after it
        # (measuring during it reads topics that are being deleted).
        deadline = time.monotonic() + 300
        while True:
            g = (await client.get("/api/v1/stats/realtime")).json()["data"]["generation"]
            known = g["records"] is not None and g["broker_mb"] is not None  # not mid-switch
            below = (known and g["records"] < g["max_records"]
                     and g["broker_mb"] < g["max_broker_mb"])  # fmt: skip
            if below or time.monotonic() > deadline:
                break
            await asyncio.sleep(2)
        stop.set()
        await sampler
    return {"accept_s": round(accept_s, 1), "total_s": round(total_s, 1),
            "events_per_s": round(executions * STEPS * 2 / total_s),
            "slowest_request_s": round(slowest, 2), "final": g, "fetch_samples": samples}


def _after_quiet(base_url: str, settings: Settings, kafka_port: int, quiet_s: float,
                 finish: bool, before: int) -> dict:  # fmt: skip
    """After the load (``before`` switches then): wait for the quiet generation to move
    on, run a small workload on the fresh generation, then its fetch latency against a
    fresh topic holding a copy of the same records, and the broker's RSS."""
    t0 = time.perf_counter()
    with httpx.Client(base_url=base_url, timeout=60) as client:
        def info() -> dict:
            return client.get("/api/v1/stats/realtime").json()["data"]["generation"]

        while (g := info())["switches"] == before or g["records"] is None:
            if time.perf_counter() - t0 > quiet_s + 600:
                return {"quiet_switch": None}
            time.sleep(2)
    waited = round(time.perf_counter() - t0, 1)
    print(f"quiet switch to generation {g['number']} {waited}s after the load: "
          f"{g['last_switch']}", flush=True)
    small = asyncio.run(_load(base_url, settings, 1_000, 50, "after", finish, 3_600))
    gen = small["final"]["number"]
    [broker_pid] = pids("tansu", kafka_port) or [0]
    rss = broker_rss_mb(broker_pid) if broker_pid else None
    fetch = asyncio.run(fetch_vs_fresh(settings.at_generation(gen)))
    print(f"after it and 1,000 more executions: broker RSS {rss} MB; fetch {fetch}", flush=True)
    return {"quiet_switch_after_s": waited, "quiet_switch": g["last_switch"],
            "after_quiet_broker_rss_mb": rss,
            **{f"after_quiet_{k}": v for k, v in fetch.items()}}  # fmt: skip


def _worker_restart(base_url: str, kafka_port: int, sig: signal.Signals, finish: bool
                    ) -> float:  # fmt: skip
    """Stop the worker with ``sig`` (the supervisor starts it again); seconds until a new
    execution's events are applied again."""
    [pid] = pids("runledger.cli worker", kafka_port)
    eid = f"restart_{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    os.kill(pid, sig)
    with httpx.Client(base_url=base_url, timeout=60) as client:
        r = client.post("/api/v1/events", json={"events": _reports(eid, finish)})
        r.raise_for_status()
        while client.get(f"/api/v1/executions/{eid}").json().get(
                "data", {}).get("last_seq") != _per_execution(finish):
            time.sleep(0.1)
    return round(time.perf_counter() - t0, 2)


def main(
    events: int = typer.Option(5_000_000, help="reported step events in all"),
    max_records: int = typer.Option(500_000, help="RUNLEDGER_GENERATION_MAX_RECORDS"),
    max_broker_mb: int = typer.Option(1024, help="RUNLEDGER_GENERATION_MAX_BROKER_MB"),
    batch: int = typer.Option(1_000, help="step events per request"),
    unfinished: bool = typer.Option(
        False, help="never report execution_completed: every execution stays unfinished "
        "(the worst case: each switch restores all of them)"),
    sample_every: float = typer.Option(
        60, help="seconds between fetch samples on the current generation during the load"),
    quiet_seconds: float = typer.Option(
        60, help="RUNLEDGER_GENERATION_QUIET_SECONDS (the product's default is 300)"),
    quiet_min_records: int = typer.Option(
        10_000, help="RUNLEDGER_GENERATION_QUIET_MIN_RECORDS (the product's default is "
        "100,000)"),
) -> None:
    executions = events // (STEPS * 2)
    print(f"machine: {machine()}; {executions:,} executions, {events:,} step events, "
          f"generation threshold {max_records:,} records or {max_broker_mb} MB", flush=True)
    env = {"RUNLEDGER_GENERATION_MAX_RECORDS": str(max_records),
           "RUNLEDGER_GENERATION_MAX_BROKER_MB": str(max_broker_mb),
           "RUNLEDGER_GENERATION_CHECK_INTERVAL": "5",
           "RUNLEDGER_GENERATION_QUIET_SECONDS": str(quiet_seconds),
           "RUNLEDGER_GENERATION_QUIET_MIN_RECORDS": str(quiet_min_records)}
    with running_product(**env) as (settings, base_url):
        data_dir = settings.data_dir
        kafka_port = int(settings.bootstrap.rsplit(":", 1)[1])
        load = asyncio.run(_load(base_url, settings, executions, batch // (STEPS * 2), "soak",
                                 not unfinished, sample_every))  # fmt: skip
        gen = load["final"]["number"]
        samples = load.pop("fetch_samples")
        print(f"load: {json.dumps(load)}")
        for sample in samples:
            print(f"during the load: generation {sample['generation']}, partition 0 at "
                  f"{sample['partition0_records']:,} records: fetch p99 "
                  f"{sample['fetch_p99_ms']} ms (raw {sample['raw_fetch_p99_ms']})")
        [broker_pid] = pids("tansu", kafka_port) or [0]
        rss = broker_rss_mb(broker_pid) if broker_pid else None
        fetch = asyncio.run(fetch_vs_fresh(settings.at_generation(gen)))
        print(f"broker RSS {rss} MB; fetch {fetch}", flush=True)
        restart_s = _worker_restart(base_url, kafka_port, signal.SIGTERM, not unfinished)
        print(f"worker SIGTERM → applying again after {restart_s}s", flush=True)
        time.sleep(15)  # a stable uptime first: the supervisor's backoff starts afresh
        kill_s = _worker_restart(base_url, kafka_port, signal.SIGKILL, not unfinished)
        print(f"worker SIGKILL → applying again after {kill_s}s (its replacement sends "
              "LeaveGroup for it: streams/membership.py)", flush=True)
        # the restarts above take ~35 s, under the quiet window: the switch comes after,
        # unless it came while the load's last events were still being projected
        final = load["final"]
        quiet_already = (final["last_switch"] or {}).get("due") == "quiet"
        after = _after_quiet(base_url, settings, kafka_port, quiet_seconds, not unfinished,
                             final["switches"] - int(quiet_already))
        recoveries = table_loads(data_dir.parent / "product.log")
        switches = switch_timings(data_dir.parent / "product.log")
        for i, steps in enumerate(switches, 2):
            print(f"switch to generation {i}: {steps}", flush=True)
        print(f"table loads (s): {recoveries}", flush=True)
    check = gapless(data_dir, executions, _per_execution(not unfinished))
    print(f"archive check: {check}", flush=True)
    result = {"bench": "generations", "machine": machine(), "events": events,
              "finished_executions": not unfinished,
              "executions": executions, "max_records": max_records,
              "switches": len(switches), "switches_during_load": gen - 1, "generation": gen,
              "broker_rss_mb": rss,
              **fetch, "worker_restart_s": restart_s, "worker_kill_restart_s": kill_s,
              "table_recovery_s": recoveries, **check,
              **{k: load[k] for k in ("events_per_s", "accept_s", "total_s",
                                      "slowest_request_s")},
              "switch_timings": switches, "fetch_samples": samples, **after}  # fmt: skip
    print("BENCH " + json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    typer.run(main)
