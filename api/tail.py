"""One consumer of the events topic per API process: live fan-out and command verdicts.

It reads every partition by manual assignment (no consumer group) from the end offsets
at start, keeps each execution's recent events, hands new events to subscribers, and
resolves the futures of control commands waiting for the event their command caused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import TopicPartition

from runledger.kafka import make_consumer
from runledger.settings import Settings

log = logging.getLogger("runledger.api.tail")
RECENT_PER_EXECUTION = 2_000
RECENT_EXECUTIONS = 10_000
# Events kept in all: ~1.5 kB each as parsed. Without it, 10,000 long executions could
# hold 20 M events; with it, ~150 MB at most (what 10,000 executions of ten events took).
RECENT_EVENTS = 100_000


class EventTail:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.topic("events")
        self.consumer = make_consumer(settings, group_id=None, enable_auto_commit=False)
        self.recent: OrderedDict[str, deque[dict[str, Any]]] = OrderedDict()
        self._recent_events = 0  # in all of ``recent``
        self.subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self.verdicts: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.watchers: list[Callable[[dict[str, Any]], None]] = []  # called with each event
        self._task: asyncio.Task[None] | None = None
        self.running = False

    async def start(self) -> None:
        await self.consumer.start()
        parts = self.consumer.partitions_for_topic(self.topic) or set()
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        self.consumer.assign(tps)
        ends = await self.consumer.end_offsets(tps)
        for tp in tps:
            self.consumer.seek(tp, ends[tp])
        self._task = asyncio.create_task(self._run(), name="events-tail")
        self.running = True

    async def switch(self, settings: Settings, wait: float = 5.0) -> None:
        """Move to ``settings``' events topic (a new topic generation), from its start,
        after reading the current one to its end (waiting up to ``wait`` seconds; a
        subscriber that misses an event sees a gap and reads history)."""
        tps = sorted(self.consumer.assignment(), key=lambda tp: tp.partition)
        ends = await self.consumer.end_offsets(tps) if tps else {}
        deadline = asyncio.get_running_loop().time() + wait
        while [tp for tp, end in ends.items() if await self.consumer.position(tp) < end]:
            if asyncio.get_running_loop().time() > deadline:
                log.warning("events tail: moving on before the end of %s", self.topic)
                break
            await asyncio.sleep(0.05)
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.settings, self.topic = settings, settings.topic("events")
        new = [TopicPartition(self.topic, p) for p in range(settings.partitions)]
        self.consumer.assign(new)
        for tp in new:
            self.consumer.seek(tp, 0)
        self._task = asyncio.create_task(self._run(), name="events-tail")
        log.info("events tail now reads %s", self.topic)

    async def stop(self) -> None:
        self.running = False
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()

    async def _run(self) -> None:
        while True:
            try:
                batches = await self.consumer.getmany(timeout_ms=200, max_records=2_000)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("events tail: fetch failed; retrying")
                await asyncio.sleep(1.0)
                continue
            for records in batches.values():
                for record in records:
                    self._dispatch(record.value)

    def _dispatch(self, raw: bytes | None) -> None:
        try:
            events = orjson.loads(raw or b"{}")["events"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("events tail: undecodable message skipped")
            return
        for ev in events:
            eid = ev["execution_id"]
            ring = self.recent.get(eid)
            if ring is None:
                ring = self.recent[eid] = deque(maxlen=RECENT_PER_EXECUTION)
            else:
                self.recent.move_to_end(eid)
            if not ring or ev["seq"] > ring[-1]["seq"]:
                if len(ring) < RECENT_PER_EXECUTION:  # else its oldest drops out
                    self._recent_events += 1
                ring.append(ev)
            while len(self.recent) > 1 and (len(self.recent) > RECENT_EXECUTIONS
                                            or self._recent_events > RECENT_EVENTS):
                self._recent_events -= len(self.recent.popitem(last=False)[1])
            for q in self.subscribers.get(eid, ()):
                q.put_nowait(ev)
            for watch in self.watchers:
                watch(ev)
            fut = self.verdicts.pop(ev["cause_id"], None)
            if fut is not None and not fut.done():
                fut.set_result(ev)

    # ------------------------------------------------------------ subscribers

    def subscribe(
        self, execution_id: str, q: asyncio.Queue[dict[str, Any]] | None = None
    ) -> asyncio.Queue[dict[str, Any]]:
        """Live events of ``execution_id`` go to ``q`` (a new queue unless given)."""
        q = q if q is not None else asyncio.Queue()
        self.subscribers.setdefault(execution_id, set()).add(q)
        return q

    def unsubscribe(self, execution_id: str, q: asyncio.Queue[dict[str, Any]]) -> None:
        subs = self.subscribers.get(execution_id)
        if subs is not None:
            subs.discard(q)
            if not subs:
                del self.subscribers[execution_id]

    def recent_after(self, execution_id: str, after_seq: int) -> list[dict[str, Any]]:
        return [e for e in self.recent.get(execution_id, ()) if e["seq"] > after_seq]

    def subscriber_count(self) -> int:
        return sum(len(s) for s in self.subscribers.values())

    # ------------------------------------------------------------ verdicts

    def expect(self, cause_id: str) -> asyncio.Future[dict[str, Any]]:
        """Register interest in the first event caused by ``cause_id`` (before publishing)."""
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.verdicts[cause_id] = fut
        return fut

    async def verdict(self, cause_id: str, wait_s: float) -> dict[str, Any] | None:
        fut = self.verdicts.get(cause_id)
        if fut is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(fut), wait_s)
        except TimeoutError:
            return None
        finally:
            self.verdicts.pop(cause_id, None)
