"""This API process's view of the admission queue's length (for the 429 past
``max_queued``; the queue itself lives in a worker: streams/admission.py)."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

PENDING_S = 30.0  # how long a start this process accepted counts before the tail shows it


class QueueWatch:
    """Executions waiting in the admission queue, as far as this process can tell: those
    the events tail shows queued (until it shows them dequeued or finished), and starts
    this process accepted with ``queued`` that the tail has not shown yet (for at most
    ``PENDING_S``: a repeated start of a known execution never queues). Bounded: the
    oldest are forgotten past ``cap``."""

    def __init__(self, cap: int = 1_000_000) -> None:
        self.waiting: OrderedDict[str, int] = OrderedDict()  # execution id → since (ms)
        self.pending: OrderedDict[str, float] = OrderedDict()  # execution id → accepted at
        self.cap = cap

    def accepted(self, execution_id: str) -> None:
        if execution_id not in self.waiting:
            self.pending[execution_id] = time.monotonic()
            self.pending.move_to_end(execution_id)
            self._bound(self.pending)

    def seed(self, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            self._wait(r["execution_id"], int(r["since"]))

    def on_event(self, ev: dict[str, Any]) -> None:
        kind, eid = ev["event_type"], ev["execution_id"]
        if kind == "execution_queued":
            self._wait(eid, int(time.time() * 1000))
        elif kind in ("execution_dequeued", "execution_completed"):
            self.waiting.pop(eid, None)
            self.pending.pop(eid, None)

    def _wait(self, execution_id: str, since_ms: int) -> None:
        self.pending.pop(execution_id, None)
        self.waiting.setdefault(execution_id, since_ms)
        self._bound(self.waiting)

    def _bound(self, d: OrderedDict[str, Any]) -> None:
        while len(d) > self.cap:
            d.popitem(last=False)

    def __len__(self) -> int:
        cutoff = time.monotonic() - PENDING_S
        while self.pending and next(iter(self.pending.values())) < cutoff:
            self.pending.popitem(last=False)
        return len(self.waiting) + len(self.pending)
