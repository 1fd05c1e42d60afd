"""The step-executor process (`runledger executor`): tasks in, step events out.

A consumer group on ``runledger.tasks``. For each task: run the executor of its type and
send ``succeeded`` or ``failed`` (``runledger.step-events``, keyed by execution id) with
the time it started; a task still running after ``STARTED_AFTER`` is reported as
``started`` first, so the detail shows it running (a quick call saves that message).
Tasks run concurrently, at most ``executor_concurrency`` at once (the partitions are
paused while that many run), so a hanging call blocks nothing else. A task whose target
system is at its cap (``system_concurrency``, system_limits.py) waits without counting
as running; once ``executor_concurrency`` tasks wait so, the partitions pause too (a
backlog for one system then holds up the others: Kafka hands tasks over in order, and
buffering more would be unbounded). A partition's offset is committed only up to its
lowest unfinished task (``offsets.OffsetTracker``). Each outcome is recorded on disk
before it is sent (``outcomes.Outcomes``): a task that comes again after it finished has
its recorded outcome sent again instead of running twice. If an update cannot be sent
the process stops with an error: its unfinished tasks run again after the restart, which
the task ids make safe.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from runledger import generations
from runledger.kafka import Fetcher, group_id, make_consumer, make_producer, patch_broker_quirks
from runledger.settings import Settings
from streams.contracts import StepTask
from streams.executors.follow_limits import follow_limits
from streams.executors.offsets import OffsetTracker
from streams.executors.outcomes import Outcomes
from streams.executors.registry import (
    Executor,
    ExecutorContext,
    load_executors,
    step_http_client,
)
from streams.executors.runner import finished_update, now_ms, run_task, started_update
from streams.executors.system_limits import SystemLimits, fetch_room
from streams.membership import leave_stale, member_file, remember

log = logging.getLogger(__name__)

POLL_MS = 200
COMMIT_INTERVAL = 0.5  # seconds between offset commits while tasks finish
STOP_GRACE = 10.0  # seconds in-flight tasks get to finish on SIGTERM/SIGINT
STARTED_AFTER = 0.1  # seconds a task runs before a separate ``started`` update is sent


async def run_executors(
    settings: Settings, *, stop: asyncio.Event | None = None,
    executors: dict[str, Executor] | None = None,
) -> None:  # fmt: skip
    """Run step tasks until SIGTERM/SIGINT (or until ``stop`` is set, if given: then no
    signal handler is installed). Raises if step events could no longer be sent."""
    patch_broker_quirks()
    loaded = load_executors() if executors is None else executors
    log.info("step executors: %s", ", ".join(sorted(loaded)) or "none")
    own_signals = stop is None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    if own_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    watch = None
    if settings.uses_generations:
        settings = await generations.resolve(settings)
        watch = asyncio.create_task(generations.stop_when_newer(settings, stop.set, "executor"))
    service = ExecutorService(settings, loaded)
    follow = asyncio.create_task(follow_limits(settings, service.system_limits, stop))
    try:
        await service.run(stop)
    finally:
        follow.cancel()
        if watch is not None:
            watch.cancel()
        if own_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)


def _outcome_key(task: StepTask) -> str:
    return f"{task.tenant}/{task.task_id}"


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, service: ExecutorService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.service.commit()  # what finished is committed before others take over
        self.service.tracker.forget(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        service = self.service
        # aiokafka has no public accessor for the member id
        remember(member_file(service.settings, service.group_id),
                 service.consumer._coordinator.member_id)  # fmt: skip


class ExecutorService:
    def __init__(self, settings: Settings, executors: dict[str, Executor]) -> None:
        self.settings = settings
        self.executors = executors
        self.concurrency = settings.executor_concurrency
        self.system_limits = SystemLimits.from_settings(settings)  # set_caps() to change
        self.events_topic = settings.topic("step-events")
        self.group_id = group_id(settings, "executors")
        self.tracker = OffsetTracker()
        self.outcomes = Outcomes(settings.data_dir / "executor" / "outcomes.sqlite3")
        self.running: dict[str, list[tuple[TopicPartition, int]]] = {}  # task id → records
        self.tasks: set[asyncio.Task[None]] = set()
        self.fatal: BaseException | None = None
        self.consumer = make_consumer(
            settings, group_id=self.group_id, session_timeout_ms=10_000,
            heartbeat_interval_ms=3_000, rebalance_timeout_ms=10_000,
        )  # fmt: skip
        self.producer = make_producer(settings)
        # One HTTP client and one set of breakers per process.
        self.ctx = ExecutorContext(step_http_client(self.concurrency))
        self._last_commit = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self.producer.start()
            self.consumer.subscribe([self.settings.topic("tasks")], listener=_Rebalance(self))
            await leave_stale(self.settings)  # what a killed predecessor left, before joining
            await self.consumer.start()
            log.info("executor consuming %s as %s", self.settings.topic("tasks"), self.group_id)
            await self._consume(stop)
            await self._drain()
        finally:
            for job in self.tasks:  # only when cancelled or failing: _drain waited for them
                job.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            await self.consumer.stop()
            await self.producer.stop()
            await self.ctx.http.aclose()
            self.outcomes.close()
        if self.fatal is not None:
            raise RuntimeError("step events could not be sent; stopping") from self.fatal

    async def _consume(self, stop: asyncio.Event) -> None:
        fetcher = Fetcher(self.consumer, "executor")
        while not stop.is_set() and self.fatal is None:
            free = fetch_room(self.concurrency, len(self.tasks), self.system_limits.waiting)
            if free <= 0:
                self.consumer.pause(*self.consumer.assignment())
            elif self.consumer.paused():
                self.consumer.resume(*self.consumer.paused())
            batch = await fetcher.getmany(timeout_ms=POLL_MS, max_records=max(free, 1))
            for tp, records in batch.items():
                for record in records:
                    self._take(tp, record.offset, record.value)
            if time.monotonic() - self._last_commit >= COMMIT_INTERVAL:
                await self.commit()

    def _take(self, tp: TopicPartition, offset: int, value: bytes | None) -> None:
        try:
            task = StepTask.model_validate_json(value or b"")
        except (ValidationError, ValueError) as exc:
            log.warning("undecodable task at %s/%d offset %d skipped: %s", tp.topic,
                        tp.partition, offset, exc)  # fmt: skip
            self.tracker.skipped(tp, offset)
            return
        self.tracker.started(tp, offset)
        if task.task_id in self.running:  # redelivered while it runs: done when it is
            self.running[task.task_id].append((tp, offset))
            return
        self.running[task.task_id] = [(tp, offset)]
        job = asyncio.create_task(self._execute(task), name=f"task {task.task_id}")
        self.tasks.add(job)
        job.add_done_callback(self.tasks.discard)

    async def _execute(self, task: StepTask) -> None:
        try:
            # Inline: a lookup takes ~6 µs and a write ~65 µs, a thread hop ~150 µs.
            recorded = self.outcomes.get(_outcome_key(task))
            if recorded is not None:
                log.info("task %s already finished: its outcome is sent again", task.task_id,
                         extra={"execution_id": task.execution_id})  # fmt: skip
                await self._send(task.execution_id, recorded)
            else:
                async with self.system_limits.slot(task.system):
                    await self._run(task)
        except asyncio.CancelledError:
            self.running.pop(task.task_id, None)  # not finished: its offset stays uncommitted
            raise
        except Exception as exc:
            log.exception("cannot report task %s", task.task_id,
                          extra={"execution_id": task.execution_id})
            self.fatal = self.fatal or exc
            self.running.pop(task.task_id, None)
            return
        for tp, offset in self.running.pop(task.task_id, []):
            self.tracker.finished(tp, offset)

    async def _run(self, task: StepTask) -> None:
        """Run ``task`` and send its outcome, recorded first."""
        started, started_ms = time.perf_counter(), now_ms()
        call = asyncio.ensure_future(run_task(self.executors, task, self.ctx))
        try:
            done, _ = await asyncio.wait({call}, timeout=STARTED_AFTER)
            if not done:
                await self._send(task.execution_id,
                                 started_update(task, started_ms).model_dump_json().encode())
            result = await call
        except asyncio.CancelledError:
            call.cancel()
            raise
        outcome = finished_update(task, result, now_ms(), started_ms).model_dump_json().encode()
        self.outcomes.put(_outcome_key(task), outcome, now_ms())
        await self._send(task.execution_id, outcome)
        log.info("task %s %s", task.task_id, "succeeded" if result.ok else "failed",
                 extra={"execution_id": task.execution_id, "step_type": task.type,
                        "error_type": result.error_type,
                        "ms": round((time.perf_counter() - started) * 1000)})  # fmt: skip

    async def _send(self, execution_id: str, update: bytes) -> None:
        await self.producer.send_and_wait(self.events_topic, update, key=execution_id.encode())

    async def commit(self) -> None:
        self._last_commit = time.monotonic()
        positions = self.tracker.committable()
        if not positions:
            return
        try:
            await self.consumer.commit(positions)  # type: ignore[arg-type]
        except KafkaError as exc:  # e.g. a rebalance: the next owner re-runs, by task id
            log.warning("executor: offset commit failed: %r", exc)
            return
        self.tracker.mark_committed(positions)

    async def _drain(self) -> None:
        """Stop fetching, give in-flight tasks STOP_GRACE seconds, commit what finished."""
        self.consumer.pause(*self.consumer.assignment())
        if self.tasks:
            log.info("waiting up to %.1fs for %d running tasks", STOP_GRACE, len(self.tasks))
            _, pending = await asyncio.wait(set(self.tasks), timeout=STOP_GRACE)
            for job in pending:
                job.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.commit()
