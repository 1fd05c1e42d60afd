"""The Faust worker: decode, decide, emit, store — nothing else.

One agent (concurrency 1) reads the commands and step-events topics, so every message
of an execution is applied by one actor in partition order. Per batch of Kafka messages
(``take_events``) it folds each touched execution once, sends one events message per
execution and the step tasks it decided (`runledger.tasks`), awaits the acks, and only
then writes the table (its changelog goes to the source partition). Offsets commit after
that, with the producer flushed first (Faust). The table also keeps the worker's own
cursor per source partition, so a message Faust skips or repeats around a rebalance is
still applied exactly once (streams/cursor.py).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import signal
import time
from typing import Any

import faust
from faust.types import EventT

from runledger import generations
from runledger.broker_quirks import patch_broker_quirks
from runledger.kafka import FAUST_CLIENT_SETTINGS, changelog_topic, worker_app_id
from runledger.metrics import DEAD_LETTERS, DECIDE_SECONDS, EVICTIONS, count_events
from runledger.settings import Settings
from streams.admission_actor import KEY as QUEUE_KEY
from streams.admission_actor import AdmissionActor
from streams.admission_contracts import ADMISSION_KEY
from streams.builder import Outbound
from streams.bundles import WORKER_PASS_BYTES, in_passes, is_bundle, unpack
from streams.changelog import changelog_partition_of
from streams.contracts import (
    ChildFinished,
    DeadLetter,
    Event,
    EventsMessage,
    StepTask,
    Wake,
)
from streams.cursor import admit, cursor_key, is_cursor_key
from streams.due_index import DueIndex
from streams.hot_set import HotSet
from streams.machine import MachineConfig, Message, decide, next_due_at
from streams.membership import take_over_membership
from streams.preload import PreloadedMemoryStore
from streams.rereader import Rereader
from streams.state import ExecutionState

log = logging.getLogger("runledger.worker")
WORKER_BATCH = 1000
# States parsed per step of the timer index rebuild after an assignment: parsing all of a
# restarted worker's table at once (100k states: ~3 s) held every batch up behind it.
REINDEX_CHUNK = 1000


def _now_ms() -> int:
    return int(time.time() * 1000)


class ExecutionWorker:
    def __init__(self, settings: Settings) -> None:
        patch_broker_quirks()
        s = self.settings = settings
        self.cfg = MachineConfig(tracked_idle_timeout_ms=int(s.tracked_idle_timeout * 1000))
        self.hot = HotSet(int(s.finished_ttl * 1000), int(s.idle_ttl * 1000))
        datadir = s.data_dir / "worker"  # Faust's own files, not in the working directory
        datadir.mkdir(parents=True, exist_ok=True)
        self.app = faust.App(
            worker_app_id(s),
            broker=f"kafka://{s.bootstrap}",
            store=PreloadedMemoryStore.URL,
            datadir=str(datadir),
            processing_guarantee="at_least_once",
            topic_partitions=s.partitions,
            topic_replication_factor=1,
            topic_allow_declare=False,
            table_standby_replicas=0,
            broker_rebalance_timeout=10,
            # Tansu answers a JoinGroup after half the session timeout the group was formed
            # with, and a killed worker stays a member for all of it: 6 s (not 10) took a
            # SIGKILL restart from ~20 s to ~5 s before the assignment (measured).
            # Heartbeats come from Faust's consumer thread, not the agent's loop.
            broker_session_timeout=6,
            broker_heartbeat_interval=2,
            **FAUST_CLIENT_SETTINGS,
            web_enabled=False,
            autodiscover=False,
        )
        raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
        self.source = self.app.topic(s.topic("commands"), s.topic("step-events"), **raw)
        self.commands = self.app.topic(s.topic("commands"), **raw)
        self.step_events = self.app.topic(s.topic("step-events"), **raw)
        self.events = self.app.topic(s.topic("events"), **raw)
        self.tasks = self.app.topic(s.topic("tasks"), **raw)
        self.dead_letters = self.app.topic(s.topic("dead-letters"), **raw)
        # Typed Any: Faust's type stubs lack what is used below (serializers, recovery).
        table: Any = self.app.Table("executions", partitions=s.partitions, key_type=bytes,
                                    value_type=bytes)
        # Keys are execution ids and values stored states (`stored_json`), both bytes: no codec.
        table.key_serializer = table.value_serializer = "raw"
        self.table: Any = table
        assert self.table.changelog_topic.get_topic_name() == changelog_topic(s)
        self.app.agent(self.source, name="advance")(self._advance)
        self.app.timer(s.timer_scan_interval)(self._scan_timers)
        if s.uses_generations:
            self.app.task(self._watch_generation)
        take_over_membership(self.app, s)  # before Faust joins the group
        self._due = DueIndex()
        self.rereader = Rereader(self.app, self.table,
                                 {s.topic("commands"), s.topic("step-events")},
                                 worker_app_id(s))  # fmt: skip
        self.queue = AdmissionActor(self.table, self.commands)
        self._woken: dict[bytes, tuple[int, float]] = {}  # key → (due woken for, when)
        self._indexed_partitions: frozenset[Any] = frozenset()

    # ------------------------------------------------------------------ agent

    async def _advance(self, stream: Any) -> None:
        async for batch in stream.take_events(WORKER_BATCH, within=0.01):
            for part in in_passes(batch, lambda ev: len(ev.value or b""), WORKER_PASS_BYTES):
                await self._apply_batch(part)

    async def _apply_batch(self, batch: list[EventT]) -> None:
        tps = {ev.message.tp for ev in batch}
        self.rereader.seen(tps)
        admission = admit(((ev.message.tp, ev.message.offset) for ev in batch),
                          self.rereader.cursors(tps))
        grouped: dict[str, list[tuple[EventT, Any]]] = {}  # Message, or AdmissionMessage
        acks: list[Any] = []
        last_of: dict[Any, EventT] = {}  # source partition → its last applied message
        for ev, applies in zip(batch, admission.apply, strict=True):
            if not applies:
                continue
            last_of[ev.message.tp] = ev
            msgs, unreadable = unpack(ev.value)
            for raw, reason in unreadable:
                acks.append(await self._dead_letter(ev, reason, raw))
            for msg in msgs:
                grouped.setdefault(msg.execution_id, []).append((ev, msg))
        changed: dict[str, tuple[EventT, ExecutionState]] = {}
        evicted: dict[str, tuple[EventT, str]] = {}
        queue_write: tuple[EventT, bytes] | None = None
        emitted: list[Event] = []
        for eid, items in grouped.items():
            if eid == ADMISSION_KEY:
                queue_write = await self.queue.apply(items, acks)
                continue
            state = before = self._load(eid)
            out: list[Event] = []
            tasks: list[StepTask] = []
            outbound: list[Outbound] = []
            for ev, msg in items:
                started = time.perf_counter()
                try:
                    decision = decide(state, msg, self.cfg)
                except Exception as exc:  # a bug or a state it cannot take: park the message
                    log.exception("cannot apply message", extra={"execution_id": eid})
                    alone = msg.model_dump_json().encode() if is_bundle(ev.value) else (
                        ev.value)  # one of a bundle: itself only
                    acks.append(await self._dead_letter(ev, f"could not be applied: {exc!r}",
                                                        alone, eid))
                    continue
                DECIDE_SECONDS.observe(time.perf_counter() - started)
                state = decision.state
                out.extend(decision.events)
                tasks.extend(decision.tasks)
                outbound.extend(decision.messages)
            if out:
                emitted.extend(out)
                body = EventsMessage(events=tuple(out)).model_dump_json().encode()
                acks.append(await self.events.send(key=eid.encode(), value=body, force=True))
            for task in tasks:
                acks.append(await self.tasks.send(key=eid.encode(),
                                                  value=task.model_dump_json().encode(),
                                                  force=True))  # fmt: skip
            for m in outbound:  # to other executions: a child's start/stop, its outcome
                topic = self.step_events if isinstance(m, ChildFinished) else self.commands
                acks.append(await topic.send(key=m.execution_id.encode(),
                                             value=m.model_dump_json().encode(), force=True))
            if state is not None and self._evictable(state, [m for _, m in items]):
                evicted[eid] = (items[-1][0], "finished" if state.finished else "idle")
            elif state is not None and state is not before:  # new events, or a rehydrate
                changed[eid] = (items[-1][0], state)
        count_events(emitted)  # once per batch: see runledger/metrics.py
        if acks:
            await asyncio.gather(*acks)
        if queue_write is not None:
            with changelog_partition_of(queue_write[0]):
                self.table[QUEUE_KEY] = queue_write[1]
        for eid, (ev, state) in changed.items():
            key = eid.encode()
            with changelog_partition_of(ev):
                self.table[key] = state.stored_json().encode()
            self._note_due(key, state)
        for eid, (ev, kind) in evicted.items():
            key = eid.encode()
            if key in self.table:
                with changelog_partition_of(ev):
                    del self.table[key]  # a tombstone on the changelog
                EVICTIONS.labels(kind).inc()
            self._due.discard(key)
        for tp, offset in admission.moved.items():  # after the states, to the same partition
            with changelog_partition_of(last_of[tp]):
                self.table[cursor_key(tp)] = b"%d" % offset
        if admission.holes:
            await self.rereader.seek_back(admission.holes)

    def _evictable(self, state: ExecutionState, msgs: list[Message]) -> bool:
        """An execution leaves the hot set once a wake finds it past its time there
        (streams/hot_set.py); the API hands its archived state back with a later message."""
        return any(isinstance(m, Wake) and self.hot.gone(state, m.received_at) for m in msgs)

    def _load(self, eid: str) -> ExecutionState | None:
        raw = self.table.get(eid.encode())
        return ExecutionState.model_validate_json(raw) if raw else None

    async def _dead_letter(self, ev: EventT, reason: str, value: bytes,
                           execution_id: str | None = None) -> Any:  # fmt: skip
        """Park ``value``: the Kafka message ``ev``, or the one worker message of it that
        could not be read or applied (streams/bundles.py), under its execution's key."""
        m = ev.message
        raw_key = m.key if execution_id is None else execution_id.encode()
        key = (raw_key or b"").decode("utf-8", "replace")
        log.warning("dead letter: %s", reason[:500], extra={"execution_id": key})
        DEAD_LETTERS.inc()
        body = DeadLetter(
            reason=reason[:2000], topic=m.topic, partition=m.partition, offset=m.offset,
            key=key,
            value_b64=base64.b64encode(value).decode(), at=_now_ms(),
        ).model_dump_json().encode()  # fmt: skip
        return await self.dead_letters.send(key=raw_key, value=body, force=True)

    # ------------------------------------------------------------------ timers

    def _note_due(self, key: bytes, state: ExecutionState) -> None:
        times = [t for t in (next_due_at(state, self.cfg), self.hot.leaves_at(state))
                 if t is not None]  # fmt: skip
        self._due.set(key, min(times, default=None))

    async def _reindex_if_reassigned(self) -> None:
        actives = frozenset(self.app.assignor.assigned_actives())
        if actives == self._indexed_partitions:
            return
        self._indexed_partitions = actives
        self._due.clear()
        data = self.table.data
        for i, key in enumerate(list(data.keys())):
            if i % REINDEX_CHUNK == REINDEX_CHUNK - 1:
                await asyncio.sleep(0)  # the agent applies batches meanwhile
                if self.app.should_stop:  # or every step of a SIGTERM waits behind a chunk
                    self._indexed_partitions = frozenset()
                    return
            raw = data.get(key)  # read now: the agent may have changed or evicted it
            if raw is None or is_cursor_key(key) or key == QUEUE_KEY:
                continue
            self._note_due(key, ExecutionState.model_validate_json(raw))

    async def _scan_timers(self) -> None:
        """Send a `wake` to every execution whose earliest timer is due."""
        tables: Any = self.app.tables
        if not tables.recovery.completed.is_set():
            return
        await self._reindex_if_reassigned()
        await self.rereader.reread_skipped_tails()
        now = _now_ms()
        mono = time.monotonic()
        # taken whole first: the agent changes the index while the sends below await
        for key, due in list(self._due.due(now)):
            last = self._woken.get(key)
            if last is not None and last[0] == due and mono - last[1] < 5.0:
                continue  # woken for this very timer a moment ago
            self._woken[key] = (due, mono)
            wake = Wake(execution_id=key.decode(), received_at=now)
            await self.commands.send(key=key, value=wake.model_dump_json().encode(), force=True)
        if len(self._woken) > 10_000:
            self._woken = {k: w for k, w in self._woken.items() if mono - w[1] < 5.0}


    async def _watch_generation(self) -> None:
        """A newer topic generation exists: stop as on SIGTERM (the current batch is
        finished and committed); the supervisor starts this worker again, there."""
        await generations.stop_when_newer(
            self.settings, lambda: os.kill(os.getpid(), signal.SIGTERM), "worker")


def run_worker(settings: Settings) -> None:
    """Run one worker until SIGTERM/SIGINT (`runledger worker`)."""
    if settings.uses_generations:
        settings = generations.resolve_blocking(settings)
    worker = ExecutionWorker(settings)
    faust.Worker(
        worker.app, loglevel=settings.log_level.lower(), quiet=True, override_logging=False
    ).execute_from_commandline()
