"""The worker against the real broker when its group's committed offset is past messages
it never applied — what Faust does after skipping a prefetched batch around a rebalance
(streams/cursor.py). The worker reads them from its own cursor anyway, once each: when a
later message shows the hole, and when none does (the hole is at the partition's end)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

from runledger.kafka import create_topics, make_consumer, make_producer, worker_app_id
from runledger.settings import Settings
from streams.contracts import Report, ReportBatch


def _start_worker(s: Settings, log: Path) -> subprocess.Popen:
    env = {**os.environ, "RUNLEDGER_KAFKA_BOOTSTRAP": s.bootstrap,
           "RUNLEDGER_PARTITIONS": str(s.partitions), "RUNLEDGER_TOPIC_PREFIX": s.topic_prefix}
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "runledger.cli", "worker"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    assert proc.wait(60) == 0


async def test_messages_behind_a_committed_offset_jump_are_still_applied_once(
    kafka_settings: Settings, tmp_path: Path
):
    s = kafka_settings.model_copy(update={"topic_prefix": f"c{uuid.uuid4().hex[:8]}"})
    await create_topics(s)
    eid = f"cur_{uuid.uuid4().hex[:8]}"
    topic = s.topic("step-events")
    tp = TopicPartition(topic, 0)
    producer = make_producer(s)
    await producer.start()
    events = make_consumer(s, s.topic("events"), group_id=f"r{uuid.uuid4().hex[:6]}")
    await events.start()
    logs: list[str] = []

    async def report(n: int) -> None:
        batch = ReportBatch(execution_id=eid, received_at=int(time.time() * 1000), reports=(
            Report(report_id=f"r{n}", event_type="log", timestamp=1_000 + n),))
        await producer.send_and_wait(topic, batch.model_dump_json().encode(),
                                     key=eid.encode(), partition=0)

    async def logs_until(count: int, wait_s: float = 60.0) -> None:
        deadline = time.monotonic() + wait_s
        while len(logs) < count and time.monotonic() < deadline:
            for records in (await events.getmany(timeout_ms=500)).values():
                logs.extend(e["cause_id"] for r in records
                            for e in orjson.loads(r.value)["events"]
                            if e["event_type"] == "log")  # fmt: skip
        assert len(logs) >= count, f"{len(logs)} of {count} reports applied: {logs}"

    async def commit(offset: int) -> None:
        group = make_consumer(s, group_id=worker_app_id(s), enable_auto_commit=False)
        await group.start()
        group.assign([tp])
        await group.commit({tp: OffsetAndMetadata(offset, "")})
        await group.stop()

    try:
        for n in range(10):  # offsets 0..9
            await report(n)
        await commit(5)  # as if 0..4 were done: 5 arrives first and shows the hole
        worker = _start_worker(s, tmp_path / "worker.log")
        await logs_until(10)
        _stop(worker)

        for n in range(10, 15):  # offsets 10..14
            await report(n)
        await commit(15)  # past the end: no later message shows the hole
        worker = _start_worker(s, tmp_path / "worker.log")
        await logs_until(15)
        await asyncio.sleep(2)  # a duplicate would arrive about now
        await logs_until(15, wait_s=1)
        _stop(worker)
    finally:
        await producer.stop()
        await events.stop()
    assert logs == [f"r{n}" for n in range(15)]
    assert "skipped by the consumer: reading them again" in (tmp_path / "worker.log").read_text()
