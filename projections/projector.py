"""The projector: a batch consumer of ``runledger.events`` writing ClickHouse.

It also archives ``runledger.dead-letters`` (``projections.dead_letters``) in the same
batches, so that dead letters outlive the embedded broker.

The shape of Quix Streams' sinks: consume, buffer up to ``projector_max_batch`` events or
``projector_max_delay`` seconds, fold the batch onto each execution's prior state
(``rows.project``), insert ``events`` → ``step_records`` → ``executions``, each with an
``insert_deduplication_token`` derived from the batch, and only then commit the offsets.
A crash anywhere re-delivers the batch; the tokens and the seq check make that harmless.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from projections import dead_letters
from projections.batch import Batch, Messages
from projections.clickhouse import ClickHouse
from projections.schema import DEFAULT_DATABASE
from projections.writer import BatchWriter
from runledger.hooks import Hooks
from runledger.kafka import Fetcher, make_consumer, projector_group
from runledger.metrics import observe_flush
from runledger.settings import Settings
from streams.contracts import Event
from streams.times import ms_of

log = logging.getLogger(__name__)

_POLL_MS = 200
_MAX_BACKOFF = 5.0


class _Rebalance(ConsumerRebalanceListener):
    """Holds its projector weakly. A stopped consumer is a tangle of reference cycles, and
    the raised GC thresholds (runledger/cli.py) leave cycles for minutes: through a strong
    reference here each generation switch left the old projector and its cache alive
    (~2.4 M objects after ten switches, benchmarks/memory.py --unended)."""

    def __init__(self, projector: Projector) -> None:
        self.projector = weakref.ref(projector)

    async def on_partitions_revoked(self, revoked: Any) -> None:
        projector = self.projector()
        if revoked and projector is not None:
            await projector._before_revoke(set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        # Partitions may have been projected elsewhere meanwhile: cached states may be stale.
        projector = self.projector()
        if projector is not None:
            projector.writer.forget()


class Projector:
    """Consumes the events topic in a consumer group and keeps ClickHouse up to date."""

    def __init__(
        self, settings: Settings, ch: ClickHouse, *, database: str = DEFAULT_DATABASE,
        consumer: AIOKafkaConsumer | None = None, cache_size: int = 20_000,
        hooks: Hooks | None = None,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.ch = ch
        self.database = database
        self.topic = settings.topic("events")
        self.dead_letter_topic = settings.topic("dead-letters")
        self.group_id = projector_group(settings)
        self.max_batch = settings.projector_max_batch
        self.max_delay = settings.projector_max_delay
        self.writer = BatchWriter(ch, database, cache_size=cache_size)
        self.hooks = hooks if hooks is not None else Hooks.load()
        self.stats = self.writer.stats
        self.last_flush_at: float | None = None  # wall clock (time.time())
        self._consumer = consumer
        self._batch = Batch(self.dead_letter_topic)
        self._committed: dict[TopicPartition, int] = {}
        self._flush_lock = asyncio.Lock()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._consumer is None:
            self._consumer = make_consumer(
                self.settings, group_id=self.group_id, enable_auto_commit=False,
                auto_offset_reset="earliest", session_timeout_ms=10_000,
                heartbeat_interval_ms=3_000, rebalance_timeout_ms=10_000,
            )  # fmt: skip
        self._consumer.subscribe([self.topic, self.dead_letter_topic],
                                 listener=_Rebalance(self))
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="projector")
        log.info("projector consuming %s as %s into %s", self.topic, self.group_id,
                 self.database)  # fmt: skip

    async def stop(self) -> None:
        """Stop consuming, flush and commit what is buffered, close the consumer."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("projector: the consume loop had failed")
        try:
            await self.flush()
        except Exception:
            log.exception("projector: final flush failed; the batch will be re-delivered")
        if self._consumer is not None:
            await self._consumer.stop()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def wait(self) -> None:
        """Until the consume loop ends (it ends on stop() or on an unexpected error)."""
        if self._task is not None:
            await self._task

    # ------------------------------------------------------------------ consume loop

    async def _run(self) -> None:
        assert self._consumer is not None
        fetcher = Fetcher(self._consumer, "projector")
        while not self._stopping:
            records = await fetcher.getmany(
                timeout_ms=self._batch.poll_timeout_ms(_POLL_MS, self.max_delay),
                max_records=max(self.max_batch // 10, 100),
            )  # fmt: skip
            for tp, messages in records.items():
                for message in messages:
                    if not self._batch.add(tp, message.offset, message.value):
                        self.stats.undecodable += 1
            if self._batch.due(self.max_batch, self.max_delay):
                await self._flush_until_done()

    async def _flush_until_done(self) -> None:
        backoff = 0.25
        while True:
            try:
                await self.flush()
                return
            except Exception:
                log.exception("projector: flush failed; retrying in %.2f s", backoff)
                if self._stopping:
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)

    # ------------------------------------------------------------------ flush

    async def flush(self) -> int:
        """Project and insert the batch, commit its offsets, then call the hooks with the
        new events; returns how many there were."""
        applied = await self._flush()
        await self.hooks.after_events(applied)
        return len(applied)

    async def _flush(self) -> list[Event]:
        async with self._flush_lock:
            taken = self._batch.take()
            if taken is None:
                return []
            started = time.perf_counter()
            try:
                await self.writer.write(taken.events)
                applied = self.writer.last_applied
                await dead_letters.insert(self.ch, self.database, taken.dead)  # ids dedupe
            except BaseException:
                self._batch.give_back(taken)
                raise
            self._batch.written()
            await self._commit(taken.offsets)
            self._observe(taken.messages)
            self.stats.flushes += 1
            self.stats.last_flush_ms = (time.perf_counter() - started) * 1000
            self.last_flush_at = time.time()
            return applied

    def _observe(self, messages: Messages) -> None:
        received = [ms_of(events[0].received_at) for _, events in messages
                    if events[0].received_at]  # one sample per execution message
        observe_flush(self.group_id, sum(len(events) for _, events in messages), received,
                      self.lag()["partitions"])  # fmt: skip

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        if not offsets or self._consumer is None:
            return
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:
            # The rows are in ClickHouse; a re-delivery is dropped by seq and token.
            log.warning("projector: offset commit failed: %r", exc)
            return
        self._committed.update(offsets)

    async def _before_revoke(self, revoked: set[TopicPartition]) -> None:
        try:
            await self.flush()
        except Exception:
            log.exception("projector: flush before rebalance failed; dropping revoked data")
            async with self._flush_lock:
                self._batch.drop(revoked)
        for tp in revoked:
            self._committed.pop(tp, None)

    @asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """Nothing is written while the body runs (a projection rebuild): the flush lock is
        held, so the consume loop stops at its next flush and Kafka keeps what arrives
        meanwhile; cached states are forgotten after, as the body may have rewritten them."""
        async with self._flush_lock:
            try:
                yield
            finally:
                self.writer.forget()

    # ------------------------------------------------------------------ read side

    def pending_events(self, execution_id: str, after_seq: int = 0) -> list[Event]:
        """Buffered or in-flight (not yet in ClickHouse) events of one execution, by seq."""
        return self._batch.pending(execution_id, after_seq)

    @property
    def buffered_events(self) -> int:
        return self._batch.events

    def lag(self) -> dict[str, Any]:
        """Per assigned partition: committed offset, highwater and the gap between them."""
        partitions: dict[str, dict[str, int | None]] = {}
        total = 0
        consumer = self._consumer
        assignment = consumer.assignment() if consumer is not None else set()
        for tp in sorted(assignment, key=lambda t: (t.topic, t.partition)):
            assert consumer is not None
            highwater = consumer.highwater(tp)
            committed = self._committed.get(tp)
            position = self._batch.offsets.get(tp, committed)
            behind = None
            if highwater is not None and committed is not None:
                behind = max(highwater - committed, 0)
            total += behind or 0
            partitions[f"{tp.topic}/{tp.partition}"] = {
                "committed": committed, "position": position, "highwater": highwater,
                "lag": behind,
            }  # fmt: skip
        return {
            "partitions": partitions,
            "total": total,
            "buffered_events": self._batch.events,
            "last_flush_at": self.last_flush_at,
        }
