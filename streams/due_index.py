"""Which of the worker's executions have a timer due: a heap by due time, so the timer
scan looks only at the due ones. Scanning every hot execution each tick cost ~10 % of the
worker's CPU at 30,000 hot executions (each finished one keeps its eviction timer)."""

from __future__ import annotations

import heapq
from collections.abc import Iterator


class DueIndex:
    """Each key's due time (epoch ms). The heap may hold stale entries (a key whose due
    time changed or that left): they are skipped when they come up, and dropped all at
    once when they outnumber the live ones."""

    def __init__(self) -> None:
        self._due: dict[bytes, int] = {}
        self._heap: list[tuple[int, bytes]] = []

    def __len__(self) -> int:
        return len(self._due)

    def set(self, key: bytes, due: int | None) -> None:
        """``key`` is due at ``due``; None: it has no timer."""
        if due is None:
            self.discard(key)
        elif self._due.get(key) != due:
            self._due[key] = due
            heapq.heappush(self._heap, (due, key))
            if len(self._heap) > 2 * len(self._due) + 1024:
                self._heap = [(d, k) for k, d in self._due.items()]
                heapq.heapify(self._heap)

    def discard(self, key: bytes) -> None:
        self._due.pop(key, None)

    def clear(self) -> None:
        self._due.clear()
        self._heap.clear()

    def due(self, now: int) -> Iterator[tuple[bytes, int]]:
        """Every key due at or before ``now``, earliest first, with its due time. They stay
        due (and come again at the next call) until ``set`` or ``discard`` changes them."""
        heap, again = self._heap, []
        try:
            while heap and heap[0][0] <= now:
                due, key = heapq.heappop(heap)
                if self._due.get(key) == due:
                    again.append((due, key))
                    yield key, due
        finally:
            for entry in again:
                heapq.heappush(heap, entry)
