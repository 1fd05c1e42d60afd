"""Circuit breakers, one per target system per executor process (DESIGN.md).

Rules: ``FAILURE_THRESHOLD`` consecutive failures of a retryable class open the circuit
for ``OPEN_SECONDS``; while open every call is refused at once. Then it is half-open:
at most ``HALF_OPEN_CALLS`` trial calls may be in flight; a success closes it, a
retryable failure opens it again for ``OPEN_SECONDS``. Non-retryable outcomes (4xx, a
500) say nothing about availability: they neither count nor reset the streak.

Hand-written rather than taken from PyPI: purgatory, aiobreaker and pybreaker all read
the wall clock inside the breaker (no injected time, so tests would have to sleep or
patch ``time``), and none caps the number of concurrent half-open trial calls (purgatory
and aiobreaker let every call through once half-open; pybreaker lets one call through
and counts successes instead). The logic below is pure: time comes in as an argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FAILURE_THRESHOLD = 5
OPEN_SECONDS = 30.0
HALF_OPEN_CALLS = 3

BreakerState = Literal["closed", "open", "half_open"]
Outcome = Literal["success", "failure", "ignored"]


@dataclass
class CircuitBreaker:
    """The breaker of one target. ``now`` is any monotonic clock, in seconds."""

    failure_threshold: int = FAILURE_THRESHOLD
    open_seconds: float = OPEN_SECONDS
    half_open_calls: int = HALF_OPEN_CALLS
    failures: int = 0  # consecutive retryable failures while closed
    opened_at: float | None = None  # None: closed
    trials: int = 0  # half-open trial calls in flight

    def state(self, now: float) -> BreakerState:
        if self.opened_at is None:
            return "closed"
        return "open" if now < self.opened_at + self.open_seconds else "half_open"

    def allow(self, now: float) -> bool:
        """May a call start now? A ``True`` in half-open state takes a trial slot, which
        the call's ``record`` gives back."""
        state = self.state(now)
        if state == "closed":
            return True
        if state == "half_open" and self.trials < self.half_open_calls:
            self.trials += 1
            return True
        return False

    def record(self, outcome: Outcome, now: float) -> None:
        """The outcome of a call that ``allow`` let through."""
        state = self.state(now)
        if state == "half_open" and self.trials > 0:
            self.trials -= 1
        if outcome == "success":
            self.failures, self.opened_at, self.trials = 0, None, 0
        elif outcome == "failure":
            if state == "closed":
                self.failures += 1
                if self.failures >= self.failure_threshold:
                    self._open(now)
            elif state == "half_open":
                self._open(now)
            # open: a late failure of a call started before it opened changes nothing

    def _open(self, now: float) -> None:
        self.opened_at, self.failures, self.trials = now, 0, 0


@dataclass
class Breakers:
    """The breakers of one process, by target key (the step's system, else the URL host)."""

    failure_threshold: int = FAILURE_THRESHOLD
    open_seconds: float = OPEN_SECONDS
    half_open_calls: int = HALF_OPEN_CALLS
    by_target: dict[str, CircuitBreaker] = field(default_factory=dict)

    def get(self, target: str) -> CircuitBreaker:
        breaker = self.by_target.get(target)
        if breaker is None:
            breaker = CircuitBreaker(self.failure_threshold, self.open_seconds,
                                     self.half_open_calls)  # fmt: skip
            self.by_target[target] = breaker
        return breaker
