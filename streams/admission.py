"""The admission queue: which queued executions may start now (pure: no I/O, no clock).

Executions started while limits are configured wait here (their state reads ``queued``)
until every scope they count in (streams/limits.py) has room; then the queue sends them an
``Admit``. Among those that fit, a higher ``priority`` goes first, then the earlier
start (as the API stamped it); one that does not fit (its workflow is full, say) does
not hold up others that do. A finishing execution (or one stopped while it waited)
sends ``Release``.

``apply`` is idempotent per execution: an ``Enqueue`` of one already waiting or running,
or a ``Release`` of one unknown, changes nothing. Until the API has sent the limits
(``SetLimits``, at its start) nothing is admitted, so a restart cannot let a burst through.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from streams.admission_contracts import (
    AdmissionMessage,
    AdmissionReset,
    Enqueue,
    Occupy,
    Release,
    SetLimits,
)
from streams.contracts import Admit
from streams.limits import Limits


class Waiting(BaseModel):
    model_config = ConfigDict(frozen=True)

    subject: str
    tenant: str = "default"
    scopes: tuple[str, ...]
    priority: int = 0
    since: int  # epoch ms: when it was queued
    order: int  # arrival order, for FIFO among equal priorities

    @property
    def rank(self) -> tuple[int, int, int]:
        """Priority, then when the API accepted the start (starts of two partitions reach
        the queue in either order), then arrival."""
        return (-self.priority, self.since, self.order)


class AdmissionState(BaseModel):
    limits: Limits | None = None  # None: not told yet, so nothing is admitted
    running: dict[str, tuple[str, ...]] = Field(default_factory=dict)  # subject → scopes
    queue: list[Waiting] = Field(default_factory=list)  # in start order
    arrivals: int = 0


def apply(state: AdmissionState, msg: AdmissionMessage) -> tuple[AdmissionState, list[Admit]]:
    """The state after ``msg`` and the executions it lets start."""
    running, queue, arrivals = dict(state.running), list(state.queue), state.arrivals
    limits = state.limits
    if isinstance(msg, Enqueue):
        if msg.subject not in running and all(w.subject != msg.subject for w in queue):
            arrivals += 1
            _insert(queue, _waiting(msg, arrivals))
    elif isinstance(msg, Occupy):
        queue = [w for w in queue if w.subject != msg.subject]
        running[msg.subject] = msg.scopes
    elif isinstance(msg, Release):
        running.pop(msg.subject, None)
        queue = [w for w in queue if w.subject != msg.subject]
    elif isinstance(msg, SetLimits):
        limits = msg.limits
    elif isinstance(msg, AdmissionReset):
        running = {o.subject: o.scopes for o in msg.running}
        ordered = sorted(msg.queued, key=lambda e: (-e.priority, e.received_at, e.subject))
        queue = [_waiting(e, arrivals + i + 1) for i, e in enumerate(ordered)
                 if e.subject not in running]  # fmt: skip
        arrivals += len(ordered)
    admitted: list[Waiting] = []
    if limits is not None:
        admitted = _fill(limits, running, queue)
        queue = [w for w in queue if w.subject not in running]
    new = AdmissionState(limits=limits, running=running, queue=queue, arrivals=arrivals)
    return new, [Admit(execution_id=w.subject, tenant=w.tenant, received_at=msg.received_at,
                       command_id=f"admit:{w.subject}:{w.order}") for w in admitted]


def _waiting(e: Enqueue, order: int) -> Waiting:
    return Waiting(subject=e.subject, tenant=e.subject_tenant, scopes=e.scopes,
                   priority=e.priority, since=e.received_at, order=order)  # fmt: skip


def _insert(queue: list[Waiting], w: Waiting) -> None:
    bisect.insort(queue, w, key=lambda x: x.rank)


def _fill(
    limits: Limits, running: dict[str, tuple[str, ...]], queue: list[Waiting]
) -> list[Waiting]:
    """Move every waiting execution that fits, best rank first, into ``running``."""
    counts = Counter(s for scopes in running.values() for s in scopes)
    total = limits.max_running
    admitted = []
    for w in queue:
        if total is not None and counts["*"] >= total:
            break  # nothing fits once the global cap is reached
        if _fits(limits, counts, w.scopes):
            running[w.subject] = w.scopes
            counts.update(w.scopes)
            admitted.append(w)
    return admitted


def _fits(limits: Limits, counts: Counter[str], scopes: Iterable[str]) -> bool:
    for s in scopes:
        cap = limits.cap(s)
        if cap is not None and counts[s] >= cap:
            return False
    return True

