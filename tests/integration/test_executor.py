"""The step-executor service against the embedded broker and a real HTTP server:
tasks in on ``runledger.tasks``, TaskUpdates out on ``runledger.step-events``."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from runledger.kafka import create_topics, make_consumer, make_producer
from runledger.settings import Settings
from streams.contracts import StepTask, TaskUpdate
from streams.executors import service
from streams.executors.service import run_executors
from tests.http_stub import Stub, serve


@pytest.fixture(scope="module")
def stub() -> Iterator[Stub]:
    with serve() as s:
        yield s


@pytest.fixture
async def settings(kafka_settings: Settings) -> Settings:
    s = kafka_settings.model_copy(update={"topic_prefix": f"x{uuid.uuid4().hex[:8]}"})
    await create_topics(s)
    return s


@pytest.fixture
async def kafka(settings: Settings) -> AsyncIterator[tuple[AIOKafkaProducer, AIOKafkaConsumer]]:
    producer = make_producer(settings)
    updates = make_consumer(settings, settings.topic("step-events"), group_id=None)
    await producer.start()
    await updates.start()
    yield producer, updates
    await producer.stop()
    await updates.stop()


@asynccontextmanager
async def running_executor(settings: Settings) -> AsyncIterator[asyncio.Task[None]]:
    """The service in this process, stopped (gracefully) on exit."""
    stop = asyncio.Event()
    job = asyncio.create_task(run_executors(settings, stop=stop))
    try:
        yield job
    finally:
        stop.set()
        await asyncio.wait_for(job, 30)


def _task(url: str, execution_id: str, step_id: str = "fetch", **kw: Any) -> StepTask:
    fields: dict[str, Any] = {"task_id": f"{execution_id}/{step_id}/1",
                              "execution_id": execution_id, "step_id": step_id, "attempt": 1,
                              "type": "api_call", "system": "ERP", "dispatched_at": 1,
                              "config": {"url": url,
                                         "output_mapping": {"count": "data.count"}}}  # fmt: skip
    fields.update(kw)
    return StepTask(**fields)


async def _send(producer: AIOKafkaProducer, settings: Settings, *tasks: StepTask) -> None:
    for task in tasks:
        await producer.send_and_wait(settings.topic("tasks"), task.model_dump_json().encode(),
                                     key=task.execution_id.encode())  # fmt: skip


async def _collect(
    consumer: AIOKafkaConsumer, until: Callable[[list[TaskUpdate]], bool], got: list[TaskUpdate],
    within: float = 60.0,
) -> list[TaskUpdate]:  # fmt: skip
    deadline = time.monotonic() + within
    while not until(got):
        assert time.monotonic() < deadline, f"timed out with {got!r}"
        for records in (await consumer.getmany(timeout_ms=200)).values():
            for r in records:
                assert r.key is not None
                update = TaskUpdate.model_validate_json(r.value)
                assert r.key.decode() == update.execution_id
                got.append(update)
    return got


def _phases(got: list[TaskUpdate], task_id: str) -> list[str]:
    return [u.phase for u in got if u.task_id == task_id]


def _done(*task_ids: str) -> Callable[[list[TaskUpdate]], bool]:
    return lambda got: all(
        any(u.task_id == t and u.phase != "started" for u in got) for t in task_ids
    )


async def test_a_quick_task_is_reported_once_with_the_time_it_started(settings, kafka, stub):
    producer, updates = kafka
    eid = f"e_{uuid.uuid4().hex[:8]}"
    task = _task(f"{stub.base_url}/json/{eid}", eid)
    unknown = _task("", eid, step_id="odd", type="teleport", config={})
    got: list[TaskUpdate] = []
    before = int(time.time() * 1000)
    async with running_executor(settings):
        await _send(producer, settings, task)
        await producer.send_and_wait(settings.topic("tasks"), b"{garbage", key=eid.encode())
        await _send(producer, settings, unknown)  # behind the garbage, same partition
        await _collect(updates, _done(task.task_id, unknown.task_id), got)
    assert _phases(got, task.task_id) == ["succeeded"]  # quicker than STARTED_AFTER
    [succeeded] = (u for u in got if u.task_id == task.task_id)
    assert succeeded.started_at is not None and succeeded.started_at >= before
    assert succeeded.received_at >= succeeded.started_at
    assert (succeeded.step_id, succeeded.attempt, succeeded.tenant) == ("fetch", 1, "default")
    assert succeeded.output is not None
    assert succeeded.output["status"] == 200 and succeeded.output["count"] == 3
    assert succeeded.output["data"]["idempotency_key"] == task.task_id
    [call] = stub.calls(f"/json/{eid}")
    assert call.headers["Idempotency-Key"] == task.task_id
    assert _phases(got, unknown.task_id) == ["failed"]
    failed = next(u for u in got if u.task_id == unknown.task_id and u.phase == "failed")
    assert (failed.error_type, failed.retryable) == ("UnknownStepType", False)


async def test_a_finished_task_is_not_run_again_when_it_comes_again(settings, kafka, stub):
    producer, updates = kafka
    eid = f"e_{uuid.uuid4().hex[:8]}"
    task = _task(f"{stub.base_url}/json/{eid}", eid)
    marker = _task(f"{stub.base_url}/json/{eid}-marker", eid, step_id="marker")
    later = _task(f"{stub.base_url}/json/{eid}-later", eid, step_id="later")
    got: list[TaskUpdate] = []
    async with running_executor(settings):
        await _send(producer, settings, task)
        await _collect(updates, _done(task.task_id), got)
        # Redelivered (same task id), then a marker behind it on the same partition:
        # once the marker is done, the redelivery was taken: its outcome sent again.
        await _send(producer, settings, task, marker)
        await _collect(updates, _done(marker.task_id), got)
    assert _phases(got, task.task_id) == ["succeeded", "succeeded"]
    first, again = (u for u in got if u.task_id == task.task_id and u.phase == "succeeded")
    assert again == first
    assert len(stub.calls(f"/json/{eid}")) == 1

    # A new executor process: the committed offsets are past all three, and the task
    # sent once more (as the worker does after the embedded broker lost its outcome)
    # gets the recorded outcome, not a second call.
    async with running_executor(settings):
        await _send(producer, settings, later, task)
        await _collect(updates, lambda us: sum(u.task_id == task.task_id for u in us) == 3
                       and _done(later.task_id)(us), got)  # fmt: skip
    assert _phases(got, marker.task_id) == ["succeeded"]
    assert _phases(got, task.task_id) == ["succeeded", "succeeded", "succeeded"]
    assert len(stub.calls(f"/json/{eid}")) == 1


async def test_a_hanging_call_blocks_nothing_and_reruns_after_a_stop(
    settings, kafka, stub, monkeypatch
):
    producer, updates = kafka
    monkeypatch.setattr(service, "STOP_GRACE", 0.5)
    eid = f"e_{uuid.uuid4().hex[:8]}"
    hang = _task(f"{stub.base_url}/hang-once/{eid}", eid, step_id="hang", timeout=60)
    fast = _task(f"{stub.base_url}/json/{eid}", eid, step_id="fast")
    got: list[TaskUpdate] = []
    async with running_executor(settings):
        await _send(producer, settings, hang, fast)  # same partition, hang first
        await _collect(updates, lambda g: _done(fast.task_id)(g)
                       and bool(_phases(g, hang.task_id)), got)  # fmt: skip
        assert _phases(got, hang.task_id) == ["started"]  # still running: reported so
    # Stopped with the hanging task unfinished: the commit stopped at its offset, so the
    # next executor runs it again (with the same Idempotency-Key as before), and the one
    # behind it on the partition comes again too: its recorded outcome is sent again.
    async with running_executor(settings):
        await _collect(updates, lambda g: _phases(g, hang.task_id)[-1:] == ["succeeded"]
                       and _phases(g, fast.task_id).count("succeeded") == 2, got)  # fmt: skip
    assert _phases(got, hang.task_id) == ["started", "succeeded"]  # quick the second time
    assert [c.headers["Idempotency-Key"] for c in stub.calls(f"/hang-once/{eid}")] == [
        hang.task_id] * 2
    assert len(stub.calls(f"/json/{eid}")) == 1

    consumer = make_consumer(settings, group_id=f"{settings.topic_prefix}-executors")
    await consumer.start()
    try:
        partitions = [TopicPartition(settings.topic("tasks"), p)
                      for p in range(settings.partitions)]  # fmt: skip
        ends = await consumer.end_offsets(partitions)
        committed = {tp: await consumer.committed(tp) or 0 for tp in partitions}
    finally:
        await consumer.stop()
    assert committed == ends  # a graceful stop commits everything finished


async def test_concurrency_is_bounded(settings, kafka, stub):
    producer, updates = kafka
    settings = settings.model_copy(update={"executor_concurrency": 1})
    slow = _task(f"{stub.base_url}/slow/c?s=1", f"e_{uuid.uuid4().hex[:8]}")
    fast = _task(f"{stub.base_url}/json/c", f"e_{uuid.uuid4().hex[:8]}")
    got: list[TaskUpdate] = []
    async with running_executor(settings):
        await _send(producer, settings, slow)
        await _collect(updates, lambda g: bool(_phases(g, slow.task_id)), got)
        await _send(producer, settings, fast)
        await _collect(updates, _done(slow.task_id, fast.task_id), got)
    at = {(u.task_id, u.phase): u for u in got}
    assert at[(slow.task_id, "started")].received_at < at[(slow.task_id, "succeeded")].received_at
    fast_started = at[(fast.task_id, "succeeded")].started_at
    assert fast_started is not None and fast_started >= at[(slow.task_id, "succeeded")].received_at
