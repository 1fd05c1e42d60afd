"""At most N step tasks in flight to one target system at once, per executor process.

The circuit breaker (breaker.py) stops calls to a system that is down; this stops us
from taking one down by sending it everything at once. A task of a capped system waits
for a slot (an ``asyncio.Semaphore`` per system, made on first use) without holding up
tasks of other systems or of none: only ``task.system`` is capped, never the URL host.

A waiting task is not running, so it does not count against ``executor_concurrency``;
``fetch_room`` gives the service its budget, which also bounds how many may wait.

Caps change at runtime with ``set_caps``: tasks that arrive afterwards use a new
semaphore of the new size, while those already running or waiting finish under the one
they met, so for a moment a lowered cap can be exceeded by the tasks already running.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from runledger.metrics import EXECUTOR_SYSTEM_IN_FLIGHT
from runledger.settings import Settings


class SystemCaps(BaseModel):
    """The per-system caps in force (settings; `PUT /api/v1/admin/limits` changes them and
    each executor follows: follow_limits.py)."""

    model_config = ConfigDict(extra="forbid")

    systems: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    default: int | None = Field(default=None, ge=1)

    @classmethod
    def from_settings(cls, settings: Settings) -> SystemCaps:
        return cls(systems=settings.system_concurrency,
                   default=settings.system_concurrency_default)  # fmt: skip


def fetch_room(concurrency: int, jobs: int, waiting: int) -> int:
    """How many more tasks the service may take: ``concurrency`` of them may be running
    (all ``jobs`` but the ``waiting`` ones) and as many again may wait for their system."""
    return min(concurrency - (jobs - waiting), concurrency - waiting)


@dataclass
class _Gate:
    cap: int
    semaphore: asyncio.Semaphore
    running: int = 0
    waiting: int = 0


class SystemLimits:
    """The per-system caps of one executor process and their semaphores."""

    def __init__(self, caps: Mapping[str, int] | None = None, default: int | None = None) -> None:
        self.caps: dict[str, int] = {}
        self.default: int | None = None
        self.waiting = 0  # tasks waiting for a slot, all systems
        self._gates: dict[str, _Gate] = {}  # only systems with tasks running or waiting
        self.set_caps(caps or {}, default)

    @classmethod
    def from_settings(cls, settings: Settings) -> SystemLimits:
        return cls(settings.system_concurrency, settings.system_concurrency_default)

    def set_caps(self, caps: Mapping[str, int], default: int | None = None) -> None:
        """Replace every cap (``default``: systems not named; None: uncapped). Raises
        ValueError, changing nothing, if a cap is below 1."""
        bad = {name: cap for name, cap in caps.items() if cap < 1}
        if bad or (default is not None and default < 1):
            raise ValueError(f"system caps must be at least 1: {bad or {'default': default}}")
        self.caps, self.default = dict(caps), default

    def cap(self, system: str | None) -> int | None:
        """The cap of ``system``, None if its tasks are not capped."""
        if system is None:
            return None
        return self.caps.get(system, self.default)

    def in_flight(self, system: str) -> int:
        gate = self._gates.get(system)
        return gate.running if gate is not None else 0

    @asynccontextmanager
    async def slot(self, system: str | None) -> AsyncIterator[None]:
        """Hold one of ``system``'s slots for the block, waiting for one if need be."""
        if system is None:
            yield
            return
        cap = self.cap(system)
        if cap is None:
            with _counted(system):
                yield
            return
        gate = self._gates.get(system)
        if gate is None or gate.cap != cap:  # first use, or the cap changed since
            gate = self._gates[system] = _Gate(cap, asyncio.Semaphore(cap))
        gate.waiting += 1
        self.waiting += 1
        acquired = False
        try:
            await gate.semaphore.acquire()
            acquired = True
        finally:
            gate.waiting -= 1
            self.waiting -= 1
            if not acquired:  # cancelled while waiting
                self._forget_if_idle(system, gate)
        gate.running += 1
        try:
            with _counted(system):
                yield
        finally:
            gate.running -= 1
            gate.semaphore.release()
            self._forget_if_idle(system, gate)

    def _forget_if_idle(self, system: str, gate: _Gate) -> None:
        """Drop an unused gate, so systems seen once do not stay in memory."""
        if not gate.running and not gate.waiting and self._gates.get(system) is gate:
            del self._gates[system]


@contextmanager
def _counted(system: str) -> Iterator[None]:
    gauge = EXECUTOR_SYSTEM_IN_FLIGHT.labels(system)
    gauge.inc()
    try:
        yield
    finally:
        gauge.dec()
