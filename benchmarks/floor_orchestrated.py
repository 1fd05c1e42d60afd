"""The orchestration loop's floor: the shape's moves per step with none of Runledger's
logic, to hold `benchmarks/orchestrated.py` against (issue #10: ≥ 3,000 steps/s).

Per execution, the plan of the orchestrated benchmark reduced to its moves: 10 steps,
5 of them HTTP calls to the same local stub in three rounds (fetch; a, b, c at once;
notify), the other 5 decided inline. Processes, as the product runs them:

- a Faust worker (`faust-streaming`, the product's client settings) reads starts and
  outcomes in batches, keeps each execution's progress in a changelog-backed table,
  sends one task message per HTTP step and one events message per execution per batch;
- an executor (aiokafka consumer, httpx client, 64 tasks at once as the product's
  default) calls the stub and sends each outcome, as the product does;
- the embedded broker, and the stub.

Left out, so the floor only gets faster: the API and its journal (starts go straight to
Kafka from this process), the projector and ClickHouse, the events tail, templates,
validation and the state machine. All executions start at once; the figure is the steps
of the finished executions ÷ (first start → the stub's last call).

    python benchmarks/floor_orchestrated.py [--executions 3000] [--client httpx-aiohttp]
Last line: BENCH {json}.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import typer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._floor import (  # noqa: E402
    PARTITIONS,
    children,
    create_topics,
    faust_app,
    raw_table,
)
from benchmarks._harness import cpu_now, cpu_per_unit, free_port, machine  # noqa: E402
from benchmarks._stub import start_stub  # noqa: E402
from runledger.broker import EmbeddedBroker  # noqa: E402
from runledger.kafka import make_consumer, make_producer  # noqa: E402
from runledger.settings import Settings  # noqa: E402

STARTS, OUTCOMES, TASKS, EVENTS = "of-starts", "of-outcomes", "of-tasks", "of-events"
APP_ID, STEPS, CALLS = "ofloor", 10, 5
CHANGELOG = f"{APP_ID}-progress-changelog"
NEXT = {"start": ["fetch"], "fetch": ["a", "b", "c"], "merge": ["notify"], "notify": []}


def run_worker(bootstrap: str, datadir: str) -> None:
    import faust

    from streams.changelog import changelog_partition_of

    app = faust_app(APP_ID, bootstrap, datadir)
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    source = app.topic(STARTS, OUTCOMES, **raw)
    tasks, events = app.topic(TASKS, **raw), app.topic(EVENTS, **raw)
    table = raw_table(app, "progress")

    def advance(progress: dict[str, Any], step: str, out: list[dict[str, Any]]) -> list[str]:
        """The steps to call now that ``step`` finished (inline steps decided here)."""
        progress["done"].append(step)
        out.append({"step": step, "status": "succeeded", "seq": len(progress["done"])})
        if step in ("a", "b", "c"):
            if not all(s in progress["done"] for s in "abc"):
                return []
            step = "merge"  # the parallel and the transform after it: inline
            progress["done"] += ["fan", "merge"]
        elif step == "fetch":
            progress["done"].append("check")  # the condition; the parallel starts
        elif step == "notify":
            progress["done"].append("end")
        return NEXT[step]

    @app.agent(source)
    async def orchestrate(stream: Any) -> None:
        async for batch in stream.take_events(1000, within=0.01):
            touched: dict[bytes, tuple[Any, dict[str, Any], list[dict[str, Any]]]] = {}
            acks = []
            for ev in batch:
                body = orjson.loads(ev.value)
                for item in body if isinstance(body, list) else [body]:
                    key = item["execution_id"].encode()
                    if key not in touched:
                        stored = table.get(key)
                        touched[key] = (ev, orjson.loads(stored) if stored else {"done": []},
                                        [])  # fmt: skip
                    _, progress, out = touched[key]
                    touched[key] = (ev, progress, out)
                    for call in advance(progress, item["step"], out):
                        task = {"execution_id": item["execution_id"], "step": call}
                        acks.append(await tasks.send(key=key, value=orjson.dumps(task),
                                                     force=True))  # fmt: skip
            for key, (_, _, out) in touched.items():
                acks.append(await events.send(key=key, value=orjson.dumps({"events": out}),
                                              force=True))  # fmt: skip
            await asyncio.gather(*acks)
            for key, (ev, progress, _) in touched.items():
                with changelog_partition_of(ev):
                    table[key] = orjson.dumps(progress)

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


async def run_executor(bootstrap: str, stub: str, client: str) -> None:
    import aiohttp

    settings = Settings(kafka_bootstrap=bootstrap, partitions=PARTITIONS)
    consumer = make_consumer(settings, TASKS, group_id="ofloor-executor")
    producer = make_producer(settings)
    await producer.start()
    await consumer.start()
    running: set[asyncio.Task[None]] = set()
    room = asyncio.Semaphore(64)
    transport = None
    if client == "httpx-aiohttp":  # httpx's API on aiohttp's connection pool
        from httpx_aiohttp import AiohttpTransport

        transport = AiohttpTransport(limits=httpx.Limits(max_connections=64))
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(limits=limits, transport=transport) as http, \
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:

        shards = [httpx.AsyncClient(limits=httpx.Limits(max_connections=8)) for _ in range(8)]
        turn = iter(range(10**12))

        async def call(url: str) -> None:
            if client == "httpx-sharded":  # 8 pools of 8 connections: smaller pool scans
                (await shards[next(turn) % 8].get(url)).raise_for_status()
            elif client == "aiohttp":
                async with session.get(url) as r:
                    r.raise_for_status()
                    await r.read()
            else:
                (await http.get(url)).raise_for_status()

        async def run(task: dict[str, Any]) -> None:
            try:
                await call(f"{stub}/{task['step']}")
                await producer.send_and_wait(OUTCOMES, orjson.dumps(task),
                                             key=task["execution_id"].encode())
            finally:
                room.release()

        last_commit = time.monotonic()
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=64)
            for records in batches.values():
                for r in records:
                    await room.acquire()
                    job = asyncio.create_task(run(orjson.loads(r.value)))
                    running.add(job)
                    job.add_done_callback(running.discard)
            if time.monotonic() - last_commit > 1.0:  # at most once: a floor, not a product
                await consumer.commit()
                last_commit = time.monotonic()


async def start_all(bootstrap: str, n: int) -> None:
    producer = make_producer(Settings(kafka_bootstrap=bootstrap, partitions=PARTITIONS))
    await producer.start()
    acks = []
    for _ in range(n):
        eid = f"of_{uuid.uuid4().hex[:16]}"
        acks.append(await producer.send(STARTS, orjson.dumps(
            {"execution_id": eid, "step": "start"}), key=eid.encode()))
    await asyncio.gather(*acks)
    await producer.stop()


def stub_calls(stub: str) -> int:
    return int(httpx.get(f"{stub}/count", timeout=10).text)


def run_round(bootstrap: str, stub: str, n: int, names: dict[int, str]) -> dict[str, Any]:
    """Start n executions at once; wait until the stub took all their calls."""
    target = stub_calls(stub) + n * CALLS
    before = cpu_now(names)
    t0 = time.perf_counter()
    asyncio.run(start_all(bootstrap, n))
    last, last_at = -1, time.perf_counter()
    while (calls := stub_calls(stub)) < target:
        if calls != last:
            last, last_at = calls, time.perf_counter()
        elif time.perf_counter() - last_at > 60:
            raise RuntimeError(f"stalled at {calls} of {target} stub calls")
        time.sleep(0.05)
    seconds = time.perf_counter() - t0
    cpu = cpu_per_unit(before, names, n * STEPS)
    return {"executions": n, "seconds": round(seconds, 2),
            "steps_per_s": round(n * STEPS / seconds), "cpu_us_per_step": cpu}


def main(executions: int = 3000, client: str = "httpx-aiohttp") -> None:
    """``--client``: httpx-aiohttp (what the product's executor uses), httpx (httpx's own
    pool), httpx-sharded (8 clients of 8 connections) or aiohttp."""
    print(f"machine: {machine()}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="runledger-ofloor-"))
    broker = EmbeddedBroker(free_port(), root / "broker.log")
    broker.start()
    stub_proc, stub = start_stub()
    try:
        asyncio.run(create_topics(broker.bootstrap, (STARTS, OUTCOMES, TASKS, EVENTS, CHANGELOG)))
        with children(__file__, [["worker", broker.bootstrap, str(root / "worker")],
                                 ["executor", broker.bootstrap, stub, client]],
                      root / "floor.log") as procs:  # fmt: skip
            names = {broker.pid or 0: "broker", procs[0].pid: "worker",
                     procs[1].pid: "executor", stub_proc.pid: "stub"}  # fmt: skip
            warm = run_round(broker.bootstrap, stub, 300, names)  # the groups join meanwhile
            print(f"warm-up: {warm}", flush=True)
            result = run_round(broker.bootstrap, stub, executions, names)
        print(f"floor ({client}): {result['steps_per_s']:,} steps/s ({executions:,} "
              f"executions, {result['seconds']} s); CPU per step (µs): "
              f"{result['cpu_us_per_step']}", flush=True)  # fmt: skip
        bench = {"benchmark": "floor_orchestrated", "machine": machine(), "client": client}
        print("BENCH " + orjson.dumps({**bench, **result}).decode(), flush=True)
    finally:
        stub_proc.terminate()
        stub_proc.wait(10)
        broker.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        run_worker(sys.argv[2], sys.argv[3])
    elif sys.argv[1:2] == ["executor"]:
        asyncio.run(run_executor(*sys.argv[2:5]))
    else:
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        typer.run(main)
