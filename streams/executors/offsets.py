"""Bookkeeping for at-least-once with concurrent tasks (pure, no Kafka calls).

Tasks of one partition finish in any order, so a partition's offset may only be
committed up to its lowest task still running; with none running, past the last one
seen. A crash then re-runs exactly the unfinished tasks (and maybe some finished after
them): the Idempotency-Key and the machine's dedupe by task id make that safe.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable


class OffsetTracker:
    """In-flight offsets per partition, and what may be committed for each."""

    def __init__(self) -> None:
        self._in_flight: dict[Hashable, set[int]] = {}
        self._next: dict[Hashable, int] = {}  # last offset seen + 1
        self._committed: dict[Hashable, int] = {}

    def started(self, tp: Hashable, offset: int) -> None:
        self._in_flight.setdefault(tp, set()).add(offset)
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def finished(self, tp: Hashable, offset: int) -> None:
        if tp not in self._next:  # revoked meanwhile: no longer ours to commit
            return
        self._in_flight.get(tp, set()).discard(offset)

    def skipped(self, tp: Hashable, offset: int) -> None:
        """A record not run (undecodable, already finished): commit may pass it."""
        self.started(tp, offset)
        self.finished(tp, offset)

    def position(self, tp: Hashable) -> int | None:
        """The offset to commit for ``tp``: its lowest in-flight offset, else last + 1."""
        if tp not in self._next:
            return None
        running = self._in_flight.get(tp)
        return min(running) if running else self._next[tp]

    def committable(self) -> dict[Hashable, int]:
        """Positions that moved since the last ``mark_committed``."""
        out: dict[Hashable, int] = {}
        for tp in self._next:
            pos = self.position(tp)
            if pos is not None and pos != self._committed.get(tp):
                out[tp] = pos
        return out

    def mark_committed(self, positions: dict[Hashable, int]) -> None:
        self._committed.update(positions)

    def in_flight(self) -> int:
        return sum(len(s) for s in self._in_flight.values())

    def forget(self, tps: Iterable[Hashable]) -> None:
        for tp in tps:
            self._in_flight.pop(tp, None)
            self._next.pop(tp, None)
            self._committed.pop(tp, None)
