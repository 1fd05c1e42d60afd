"""The Faust worker as a process against the real broker: timers and dead letters."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import orjson
import pytest

from runledger.kafka import create_topics, make_consumer, make_producer
from runledger.settings import Settings
from streams.contracts import Report, ReportBatch, StartExecution
from tests.conftest import free_port

METRICS_PORT = free_port()


@pytest.fixture(scope="module")
def worker_settings(kafka_settings: Settings) -> Settings:
    prefix = f"w{uuid.uuid4().hex[:8]}"
    s = kafka_settings.model_copy(update={"topic_prefix": prefix, "tracked_idle_timeout": 2.0,
                                          "timer_scan_interval": 0.5})  # fmt: skip
    asyncio.run(create_topics(s))
    return s


@pytest.fixture(scope="module")
def worker(worker_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    s = worker_settings
    env = {**os.environ, "RUNLEDGER_KAFKA_BOOTSTRAP": s.bootstrap,
           "RUNLEDGER_PARTITIONS": str(s.partitions), "RUNLEDGER_TOPIC_PREFIX": s.topic_prefix,
           "RUNLEDGER_TRACKED_IDLE_TIMEOUT": "2", "RUNLEDGER_TIMER_SCAN_INTERVAL": "0.5",
           "RUNLEDGER_FINISHED_TTL": "2", "RUNLEDGER_METRICS_PORT": str(METRICS_PORT)}
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "runledger.cli", "worker"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    yield
    proc.terminate()
    proc.wait(30)


@pytest.fixture
async def io(worker_settings: Settings, worker: None) -> AsyncIterator[tuple]:
    s = worker_settings
    producer = make_producer(s)
    await producer.start()
    events = make_consumer(s, s.topic("events"), group_id=f"r{uuid.uuid4().hex[:6]}")
    dead = make_consumer(s, s.topic("dead-letters"), group_id=f"d{uuid.uuid4().hex[:6]}")
    await events.start()
    await dead.start()
    yield producer, events, dead
    await producer.stop()
    await events.stop()
    await dead.stop()


async def _collect(consumer, until, wait_s: float = 60.0) -> list[dict]:
    got: list[dict] = []
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        for records in (await consumer.getmany(timeout_ms=500)).values():
            for r in records:
                got.append(orjson.loads(r.value))
        if until(got):
            return got
    raise TimeoutError(f"gave up after {wait_s}s with {got!r}")


async def test_idle_tracked_execution_is_abandoned_by_the_timer_scanner(io, worker_settings):
    producer, events, _ = io
    s = worker_settings
    eid = f"idle_{uuid.uuid4().hex[:8]}"
    now = int(time.time() * 1000)
    start = StartExecution(execution_id=eid, received_at=now, command_id="c1")
    await producer.send_and_wait(s.topic("commands"), start.model_dump_json().encode(),
                                 key=eid.encode())

    def done(msgs: list[dict]) -> bool:
        return any(e["event_type"] == "execution_completed"
                   for m in msgs for e in m["events"] if e["execution_id"] == eid)

    msgs = await _collect(events, done)
    mine = [e for m in msgs for e in m["events"] if e["execution_id"] == eid]
    assert [e["event_type"] for e in mine] == ["execution_started", "execution_completed"]
    completed = mine[-1]
    assert completed["data"]["status"] == "failed"
    assert completed["data"]["error_type"] == "Abandoned"
    assert completed["timestamp"] == completed["data"]["due_at"]  # fired at its due time


async def test_undecodable_message_goes_to_dead_letters_and_the_partition_moves_on(
    io, worker_settings
):
    producer, events, dead = io
    s = worker_settings
    eid = f"dl_{uuid.uuid4().hex[:8]}"
    await producer.send_and_wait(s.topic("step-events"), b'{"kind": "report", "oops": 1',
                                 key=eid.encode())
    ok = ReportBatch(execution_id=eid, received_at=int(time.time() * 1000), reports=(
        Report(report_id="r1", event_type="step_started", step_id="a", timestamp=1),))
    await producer.send_and_wait(s.topic("step-events"), ok.model_dump_json().encode(),
                                 key=eid.encode())
    letters = await _collect(dead, lambda got: any(d["key"] == eid for d in got))
    letter = next(d for d in letters if d["key"] == eid)
    assert letter["reason"].startswith("undecodable") and letter["topic"] == s.topic("step-events")
    assert letter["value_b64"]
    msgs = await _collect(events, lambda got: any(
        e["execution_id"] == eid for m in got for e in m["events"]))
    assert [e["event_type"] for m in msgs for e in m["events"] if e["execution_id"] == eid] == [
        "execution_started", "step_started"]
    # Scaled out, the worker serves its own /metrics (RUNLEDGER_METRICS_PORT).
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"http://127.0.0.1:{METRICS_PORT}/metrics")).text
    dead_total = re.search(r"^runledger_dead_letters_total (\S+)$", metrics, re.M)
    assert dead_total and float(dead_total.group(1)) >= 1
    assert "runledger_decide_seconds_count" in metrics


async def test_finished_execution_leaves_the_hot_set_and_comes_back_with_its_state(
    io, worker_settings
):
    """Eviction after RUNLEDGER_FINISHED_TTL (2 s here). A late report on its own then
    finds no state (it would start over at seq 1: the API never sends it alone); with the
    archived state in front of it, as the API sends it, the seq continues."""
    from streams.contracts import FinishExecution, Rehydrate
    from streams.machine import MachineConfig, decide

    producer, events, _ = io
    s = worker_settings
    now = int(time.time() * 1000)
    evicted, revived = (f"{k}_{uuid.uuid4().hex[:8]}" for k in ("evicted", "revived"))

    def msgs(eid: str) -> tuple[StartExecution, FinishExecution]:
        return (StartExecution(execution_id=eid, received_at=now, command_id="c1"),
                FinishExecution(execution_id=eid, received_at=now + 1, command_id="f1",
                                status="stopped"))

    async def send(topic: str, *items) -> None:
        for m in items:
            await producer.send_and_wait(s.topic(topic), m.model_dump_json().encode(),
                                         key=m.execution_id.encode())

    async def seqs(eid: str, n: int) -> list[tuple[int, str]]:
        got = await _collect(events, lambda got: sum(
            e["execution_id"] == eid for m in got for e in m["events"]) >= n)
        return [(e["seq"], e["event_type"]) for m in got for e in m["events"]
                if e["execution_id"] == eid]

    for eid in (evicted, revived):
        await send("commands", *msgs(eid))
    # Read both executions' first events now, so later reads see only what comes after.
    first = await _collect(events, lambda got: all(sum(
        e["execution_id"] == eid for m in got for e in m["events"]) >= 2
        for eid in (evicted, revived)))  # fmt: skip
    assert [(e["seq"], e["event_type"]) for m in first for e in m["events"]
            if e["execution_id"] == evicted] == [(1, "execution_started"),
                                                 (2, "execution_completed")]  # fmt: skip
    await asyncio.sleep(4.5)  # TTL 2 s + a scan: both evicted by now

    def late(eid: str) -> ReportBatch:
        return ReportBatch(execution_id=eid, received_at=int(time.time() * 1000), reports=(
            Report(report_id="late", event_type="log", timestamp=now + 5),))

    await send("step-events", late(evicted))
    assert await seqs(evicted, 2) == [(1, "execution_started"), (2, "log")]  # no state left

    start, finish = msgs(revived)
    archived = decide(decide(None, start, MachineConfig()).state, finish, MachineConfig()).state
    assert archived is not None
    again = Rehydrate(execution_id=revived, received_at=int(time.time() * 1000),
                      state=archived.model_dump(mode="json"))
    await send("step-events", again, late(revived))
    assert await seqs(revived, 1) == [(3, "log")]
