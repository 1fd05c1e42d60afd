"""The projector's batch: what it has consumed and not yet written to ClickHouse.

Messages from the events topic are decoded into per-execution event tuples, dead
letters into their archive rows; the next offset to commit is kept per partition. A
flush ``take``s everything at once (the batch is then "in flight" until written) and
``give_back``s it if the write fails, so nothing consumed is lost and the offsets never
run ahead of what ClickHouse holds. No I/O here: ``projections.projector`` owns the
consumer, the writes and the commits.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from pydantic import ValidationError

from projections import dead_letters
from streams.contracts import Event, EventsMessage

log = logging.getLogger(__name__)

Messages = list[tuple[TopicPartition, tuple[Event, ...]]]


@dataclass
class Taken:
    """One flush's share: the event messages, the offsets to commit after, dead letters."""

    messages: Messages
    offsets: dict[TopicPartition, int]
    dead: list[tuple[Any, ...]]

    @property
    def events(self) -> list[Event]:
        return [e for _, events in self.messages for e in events]


@dataclass
class Batch:
    dead_letter_topic: str
    messages: Messages = field(default_factory=list)
    events: int = 0
    since: float | None = None  # monotonic time of the oldest message not yet taken
    dead: list[tuple[Any, ...]] = field(default_factory=list)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)  # next, per partition
    inflight: Messages = field(default_factory=list)

    def add(self, tp: TopicPartition, offset: int, value: bytes | str | None) -> bool:
        """One consumed message; False if it was malformed and skipped (its offset still
        counts: a bad message must not stall the projector)."""
        self.offsets[tp] = offset + 1
        if self.since is None:
            self.since = time.monotonic()
        if tp.topic == self.dead_letter_topic:
            row = dead_letters.row_of(value if isinstance(value, bytes) else None)
            if row is None:
                log.warning("projector: skipping a malformed dead letter %s[%d]@%d", tp.topic,
                            tp.partition, offset)  # fmt: skip
                return False
            self.dead.append(row)
            return True
        try:
            events = EventsMessage.model_validate_json(value or b"").events
        except ValidationError as exc:
            # The worker dead-letters bad input; here it is only skipped.
            log.warning("projector: skipping undecodable message %s[%d]@%d: %s",
                        tp.topic, tp.partition, offset, str(exc).splitlines()[0])  # fmt: skip
            return False
        if events:
            self.messages.append((tp, events))
            self.events += len(events)
        return True

    def due(self, max_events: int, max_delay: float) -> bool:
        if self.since is None:
            return False
        return self.events >= max_events or time.monotonic() - self.since >= max_delay

    def poll_timeout_ms(self, poll_ms: int, max_delay: float) -> int:
        """How long the next poll may wait: until the oldest message is due, at most poll_ms."""
        if self.since is None:
            return poll_ms
        left = max_delay - (time.monotonic() - self.since)
        return max(int(left * 1000), 0) if left < poll_ms / 1000 else poll_ms

    def take(self) -> Taken | None:
        """Everything consumed so far (now in flight), or None if nothing was."""
        if self.since is None:
            return None
        taken = Taken(self.messages, self.offsets, self.dead)
        self.inflight = taken.messages
        self.messages, self.offsets, self.dead = [], {}, []
        self.events, self.since = 0, None
        return taken

    def written(self) -> None:
        self.inflight = []

    def give_back(self, taken: Taken) -> None:
        """A failed flush's share, ahead of what arrived meanwhile."""
        self.inflight = []
        self.messages = taken.messages + self.messages
        self.dead = taken.dead + self.dead
        self.events = sum(len(events) for _, events in self.messages)
        for tp, offset in taken.offsets.items():
            self.offsets[tp] = max(offset, self.offsets.get(tp, 0))
        self.since = time.monotonic()

    def drop(self, revoked: set[TopicPartition]) -> None:
        """Forget the revoked partitions' messages (another consumer will read them)."""
        self.messages = [(tp, evs) for tp, evs in self.messages if tp not in revoked]
        self.events = sum(len(evs) for _, evs in self.messages)
        for tp in revoked:
            self.offsets.pop(tp, None)
        if not self.messages and not self.offsets:
            self.since = None

    def pending(self, execution_id: str, after_seq: int = 0) -> list[Event]:
        """Buffered or in-flight events of one execution after ``after_seq``, by seq."""
        found: dict[int, Event] = {}
        for _, events in (*self.inflight, *self.messages):
            for event in events:
                if event.execution_id == execution_id and event.seq > after_seq:
                    found.setdefault(event.seq, event)
        return [found[seq] for seq in sorted(found)]
