"""The fixed shape's floor: the ingest path with none of Runledger's logic, against the
product on the same load in the same run.

Issue #9 asks for 20,000 reported step events/s on 2 cores, and, where a goal is out of
reach, for the profile that proves it. This benchmark measures what the shape DESIGN.md
fixes costs when it does nothing but move the bytes:

- an edge (FastAPI on uvicorn): ``POST /events`` parses the body with orjson, groups
  the events by execution, journals one row per execution in chDB (group commit, as the
  product does), appends to Kafka (``--groups``: one message per execution; per
  partition on the way in; per partition both ways), awaits the acks and answers 202.
  No validation, masking, limits or auth;
- a Faust worker (`faust-streaming`, the product's client settings): per batch of up to
  1,000 messages it reads each execution's entry of a changelog-backed table, forwards
  the events to the events topic, awaits the acks, then writes the table. No state
  machine: the "state" is the execution's last message;
- a projector in the edge's process (chDB allows one process per data dir): it reads the
  events topic and inserts one row per event and one per execution per flush into chDB.
  No fold, statistics, step records or events tail.

The product does all of that and more, so its cost per event should not be below this
floor's (a minimal implementation of the shape, not a proven lower bound); the gap is
what Runledger's own logic costs. Both run on the embedded Tansu broker and chDB, with
the same events (batches of ``--batch`` events, 10 per execution, 4 requests in flight)
and end when every event is queryable; then one-event requests go back to back on 64
and 256 connections (``--connections``) for 5 s each, with each process's CPU per request.

    python benchmarks/floor.py [--events 100000] [--batch 1000] [--skip-product]
                               [--groups execution,partition_in,partition]
                               [--connections 64,256]
Last line: BENCH {json}.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import orjson
import typer
from fastapi import FastAPI, Request, Response

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._floor import (  # noqa: E402
    PARTITIONS,
    children,
    create_topics,
    faust_app,
    raw_table,
)
from benchmarks._harness import (  # noqa: E402
    cpu_now,
    cpu_per_unit,
    free_port,
    machine,
    product_processes,
    running_product,
    wait_ok,
)
from benchmarks._ingest_probes import PER_EXEC, _events_for  # noqa: E402
from benchmarks.ingest import single_event_rate  # noqa: E402
from runledger.broker import EmbeddedBroker  # noqa: E402
from runledger.generations import process_rss_mb  # noqa: E402
from runledger.kafka import make_consumer, make_producer  # noqa: E402
from runledger.settings import Settings  # noqa: E402
from streams.bundles import partition_of  # noqa: E402

IN, OUT, APP_ID = "floor-in", "floor-out", "floor"
CHANGELOG = f"{APP_ID}-state-changelog"

# ----------------------------------------------------------------------------- the edge


def edge_app(bootstrap: str, chdir: str, group: str) -> Any:
    from projections.clickhouse import ClickHouse

    settings = Settings(kafka_bootstrap=bootstrap, partitions=PARTITIONS)
    ch = ClickHouse(f"chdb://{chdir}")
    app = FastAPI()
    pending: list[tuple[list[tuple[str, bytes]], asyncio.Future[None]]] = []
    wake = asyncio.Event()
    seen = {"events": 0}

    async def journal_and_publish(producer: Any) -> None:
        """Group commit: one journal insert for what queued meanwhile, then the sends."""
        pos = 0
        while True:
            await wake.wait()
            wake.clear()
            group, pending[:] = list(pending), []
            rows = [(pos + i, eid, payload) for i, (eid, payload) in
                    enumerate(m for msgs, _ in group for m in msgs)]  # fmt: skip
            pos += len(rows)
            await ch.insert("journal", [list(c) for c in zip(*rows, strict=True)],
                            ["pos", "execution_id", "payload"])
            acks = [await producer.send(IN, payload, key=eid.encode())
                    for msgs, _ in group for eid, payload in msgs]  # fmt: skip
            await asyncio.gather(*acks)
            for _, done in group:
                done.set_result(None)

    async def project() -> None:
        consumer = make_consumer(settings, OUT, group_id="floor-projector", max_poll_records=5000)
        await consumer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=5000)
                if not batches:
                    continue
                events: list[tuple[Any, ...]] = []
                latest: dict[str, int] = {}
                for records in batches.values():
                    for r in records:
                        for e in orjson.loads(r.value):
                            events.append((e["event_id"], e["execution_id"], e["event_type"],
                                           e.get("step_id") or "", e.get("system") or "",
                                           e.get("module") or "",
                                           orjson.dumps(e.get("data") or {}).decode()))
                            latest[e["execution_id"]] = latest.get(e["execution_id"], 0) + 1
                cols = [list(c) for c in zip(*events, strict=True)]
                await ch.insert("events", cols, ["event_id", "execution_id", "event_type",
                                                 "step_id", "system", "module", "data"])
                await ch.insert("executions", [list(latest), list(latest.values())],
                                ["execution_id", "events"])
                await consumer.commit()
                seen["events"] += len(events)
        finally:
            await consumer.stop()

    @app.on_event("startup")
    async def start() -> None:
        await ch.command("CREATE TABLE IF NOT EXISTS journal (pos UInt64, execution_id "
                         "String, payload String) ENGINE = MergeTree ORDER BY pos")
        await ch.command("CREATE TABLE IF NOT EXISTS events (event_id String, execution_id "
                         "String, event_type LowCardinality(String), step_id String, system "
                         "LowCardinality(String), module LowCardinality(String), data String) "
                         "ENGINE = MergeTree ORDER BY (execution_id, event_id)")
        await ch.command("CREATE TABLE IF NOT EXISTS executions (execution_id String, events "
                         "UInt32) ENGINE = SummingMergeTree ORDER BY execution_id")
        producer = make_producer(settings)
        await producer.start()
        app.state.tasks = [asyncio.create_task(journal_and_publish(producer)),
                           asyncio.create_task(project())]  # fmt: skip

    @app.post("/events", status_code=202)
    async def events(request: Request) -> Response:
        body = orjson.loads(await request.body())
        by_execution: dict[str, list[Any]] = defaultdict(list)
        for e in body["events"]:
            by_execution[e["execution_id"]].append(e)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if group != "execution":  # one message per partition, holding its executions
            by_part: dict[int, list[Any]] = defaultdict(list)
            for eid, evs in by_execution.items():
                by_part[partition_of(eid, PARTITIONS)].extend(evs)
            msgs = [(evs[0]["execution_id"], orjson.dumps(evs)) for evs in by_part.values()]
        else:
            msgs = [(eid, orjson.dumps(evs)) for eid, evs in by_execution.items()]
        pending.append((msgs, done))
        wake.set()
        await done
        return Response(b'{"accepted":%d}' % len(body["events"]), 202,
                        media_type="application/json")

    @app.get("/count")
    async def count() -> dict[str, int]:
        rows = await ch.query("SELECT count() AS n FROM events")
        return {"events": int(rows[0]["n"]), "projected": seen["events"]}

    return app


# ---------------------------------------------------------------------------- the worker


def run_worker(bootstrap: str, datadir: str, group: str) -> None:
    import faust

    from streams.changelog import changelog_partition_of

    app = faust_app(APP_ID, bootstrap, datadir)
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    source, out = app.topic(IN, **raw), app.topic(OUT, **raw)
    table = raw_table(app, "state")

    @app.agent(source)
    async def forward(stream: Any) -> None:
        async for batch in stream.take_events(1000, within=0.01):
            latest: dict[bytes, Any] = {}
            acks = []
            states: dict[bytes, bytes] = {}
            for ev in batch:
                key, value = ev.key, ev.value
                if group == "execution":
                    acks.append(await out.send(key=key, value=value, force=True))
                    table.get(key)  # what the product does: read the state, replace it
                    latest[key], states[key] = ev, value
                    continue
                if group == "partition":  # the events go on as they came: one message
                    acks.append(await out.send(key=key, value=value, force=True))
                by_execution: dict[str, list[Any]] = defaultdict(list)
                for e in orjson.loads(value):  # split by execution: one table entry each
                    by_execution[e["execution_id"]].append(e)
                for eid, evs in by_execution.items():
                    k = eid.encode()
                    table.get(k)
                    latest[k], states[k] = ev, orjson.dumps(evs)
                    if group == "partition_in":  # one events message per execution
                        acks.append(await out.send(key=k, value=states[k], force=True))
            await asyncio.gather(*acks)
            for key, ev in latest.items():
                with changelog_partition_of(ev):
                    table[key] = states[key]

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


# ------------------------------------------------------------------------------- the run


async def offer(base_url: str, path: str, n_events: int, batch: int, queryable: Any,
                per_execution: int = PER_EXEC) -> dict[str, float]:  # fmt: skip
    """Post n_events in batches (4 in flight) and wait until ``queryable()`` has grown by
    ``per_execution`` projected events for each execution."""
    executions = [f"floor_{uuid.uuid4().hex[:16]}" for _ in range(n_events // PER_EXEC)]
    per_batch = max(batch // PER_EXEC, 1)
    chunks = [executions[i:i + per_batch] for i in range(0, len(executions), per_batch)]
    bodies = [orjson.dumps({"events": [e for eid in c for e in _events_for(eid)]})
              for c in chunks]  # fmt: skip
    total = len(executions) * PER_EXEC
    sem = asyncio.Semaphore(4)
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
        before = await queryable(client)
        t0 = time.perf_counter()

        async def send(body: bytes) -> None:
            async with sem:
                r = await client.post(path, content=body,
                                      headers={"content-type": "application/json"})
                r.raise_for_status()

        await asyncio.gather(*(send(b) for b in bodies))
        accept_s = time.perf_counter() - t0
        while await queryable(client) - before < len(executions) * per_execution:  # noqa: ASYNC110
            await asyncio.sleep(0.1)  # (another process's count)
        total_s = time.perf_counter() - t0
    return {"events": total, "accepted_per_s": round(total / accept_s),
            "events_per_s": round(total / total_s), "seconds": round(total_s, 2)}


CONNECTIONS = [64, 256]  # keep-alive connections of the single-event phases (--connections)


def _print_cpu(label: str, figures: dict[str, Any], cpu: dict[str, float]) -> None:
    print(f"{label}: {figures}", flush=True)
    print("  CPU per event (µs): " + ", ".join(f"{k} {v:,.0f}" for k, v in cpu.items()),
          flush=True)


def run_floor(n_events: int, batch: int, group: str) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="runledger-floor-"))
    broker = EmbeddedBroker(free_port(), root / "broker.log")
    broker.start()
    try:
        asyncio.run(create_topics(broker.bootstrap, (IN, OUT, CHANGELOG)))
        port = free_port()
        with children(__file__, [["worker", broker.bootstrap, str(root / "worker"), group],
                                 ["edge", broker.bootstrap, str(root / "ch"), group, str(port)]],
                      root / "floor.log") as procs:  # fmt: skip
            base = f"http://127.0.0.1:{port}"
            wait_ok(f"{base}/count", 120, f"the floor's edge; log: {root}/floor.log")

            async def counted(client: httpx.AsyncClient) -> int:
                return int((await client.get("/count")).json()["events"])

            names = {broker.pid or 0: "broker", procs[0].pid: "worker", procs[1].pid: "edge"}
            out = measure(f"floor, one message per {group}", base, "/events", counted,
                          PER_EXEC, names, n_events, batch)  # fmt: skip
            rss = {name: round(process_rss_mb(pid) or 0) for pid, name in names.items()}
        print(f"  RSS (MB): {rss}", flush=True)
        return {**out, "message_per": group, "rss_mb": rss}
    finally:
        broker.stop()


def measure(label: str, base: str, path: str, counted: Any, per_execution: int,
            names: dict[int, str], n_events: int, batch: int) -> dict[str, Any]:  # fmt: skip
    """A warm-up of 20,000 events (the worker joins its group meanwhile), then the
    measured offer, with each process's CPU over it."""
    warm = asyncio.run(offer(base, path, min(n_events, 20_000), batch, counted, per_execution))
    print(f"{label}, warm-up: {warm}", flush=True)
    before = cpu_now(names)
    figures = asyncio.run(offer(base, path, n_events, batch, counted, per_execution))
    cpu = cpu_per_unit(before, names, int(figures["events"]))
    _print_cpu(label, figures, cpu)
    single: dict[str, dict[str, float]] = {}
    for connections in CONNECTIONS:
        before, t0 = cpu_now(names), time.perf_counter()
        rate, p99 = asyncio.run(single_event_rate(base, connections, path=path))
        requests = int(rate * (time.perf_counter() - t0))
        single[str(connections)] = {"req_per_s": round(rate), "p99_ms": round(p99, 1),
                                    "cpu_us_per_request": cpu_per_unit(before, names, requests)}
    print(f"  single-event requests: {single}", flush=True)
    return {**figures, "cpu_us_per_event": cpu, "single_event_requests": single}


def run_product(n_events: int, batch: int) -> dict[str, Any]:
    """The product on the same load. Queryable: the projector has written all 11 events of
    each execution (10 reported, and the worker's `execution_started`) to ClickHouse, by
    its own count (the sum of `runledger_projector_batch_events`)."""
    with running_product() as (_settings, base):
        async def counted(client: httpx.AsyncClient) -> int:
            r = await client.get("/metrics")
            r.raise_for_status()
            line = next(ln for ln in r.text.splitlines()
                        if ln.startswith("runledger_projector_batch_events_sum"))  # fmt: skip
            return int(float(line.split()[-1]))

        return measure("product", base, "/api/v1/events", counted, PER_EXEC + 1,
                       product_processes(), n_events, batch)


def main(events: int = 100_000, batch: int = 1000, skip_product: bool = False,
         groups: str = "execution,partition_in,partition", connections: str = "64,256",
         ) -> None:  # fmt: skip
    CONNECTIONS[:] = [int(c) for c in connections.split(",")]
    print(f"machine: {machine()}", flush=True)
    result: dict[str, Any] = {"machine": machine()}
    for group in groups.split(","):
        result[f"floor_per_{group}"] = run_floor(events, batch, group)
    if not skip_product:
        result["product"] = run_product(events, batch)
    print("BENCH " + orjson.dumps({"benchmark": "floor", **result}).decode(), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        run_worker(*sys.argv[2:5])
    elif sys.argv[1:2] == ["edge"]:
        import uvicorn

        uvicorn.run(edge_app(*sys.argv[2:5]), host="127.0.0.1", port=int(sys.argv[5]),
                    log_level="warning")  # fmt: skip
    else:
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        typer.run(main)
