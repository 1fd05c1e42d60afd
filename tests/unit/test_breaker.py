"""The circuit breaker's rules, with time passed in (no sleeping)."""

from __future__ import annotations

from streams.executors.breaker import Breakers, CircuitBreaker


def _fail(breaker: CircuitBreaker, times: int, now: float) -> None:
    for _ in range(times):
        assert breaker.allow(now)
        breaker.record("failure", now)


def test_opens_after_five_consecutive_retryable_failures():
    b = CircuitBreaker()
    _fail(b, 4, now=0.0)
    assert b.state(0.0) == "closed" and b.allow(0.0)
    b.record("failure", 1.0)
    assert b.state(1.0) == "open"
    assert not b.allow(1.0)


def test_a_success_resets_the_streak_and_non_retryable_failures_do_not_count():
    b = CircuitBreaker()
    _fail(b, 4, now=0.0)
    b.allow(0.0)
    b.record("success", 0.0)
    _fail(b, 4, now=0.0)
    for _ in range(10):  # 4xx / 500: neither counted nor a reset
        b.allow(0.0)
        b.record("ignored", 0.0)
    assert b.state(0.0) == "closed"
    _fail(b, 1, now=0.0)
    assert b.state(0.0) == "open"


def test_fails_fast_for_thirty_seconds_then_half_opens():
    b = CircuitBreaker()
    _fail(b, 5, now=100.0)
    for t in (100.0, 110.0, 129.99):
        assert b.state(t) == "open" and not b.allow(t)
    assert b.state(130.0) == "half_open"


def test_half_open_allows_at_most_three_trial_calls():
    b = CircuitBreaker()
    _fail(b, 5, now=0.0)
    assert [b.allow(31.0) for _ in range(5)] == [True, True, True, False, False]
    b.record("ignored", 31.5)  # a trial that says nothing frees its slot
    assert b.allow(31.5)
    assert not b.allow(31.5)


def test_half_open_success_closes():
    b = CircuitBreaker()
    _fail(b, 5, now=0.0)
    assert b.allow(30.0)
    b.record("success", 30.2)
    assert b.state(30.2) == "closed"
    assert all(b.allow(30.3) for _ in range(10))
    _fail(b, 4, now=31.0)  # the count starts afresh
    assert b.state(31.0) == "closed"


def test_half_open_failure_reopens_for_thirty_seconds():
    b = CircuitBreaker()
    _fail(b, 5, now=0.0)
    assert b.allow(40.0)
    b.record("failure", 41.0)
    assert b.state(41.0) == "open" and not b.allow(70.9)
    assert b.state(71.0) == "half_open" and b.allow(71.0)


def test_late_failure_while_open_does_not_extend_it():
    b = CircuitBreaker()
    _fail(b, 5, now=0.0)
    b.record("failure", 20.0)  # a call that started before it opened
    assert b.state(30.0) == "half_open"


def test_breakers_are_per_target():
    breakers = Breakers()
    _fail(breakers.get("ERP"), 5, now=0.0)
    assert not breakers.get("ERP").allow(1.0)
    assert breakers.get("CRM").allow(1.0)
    assert breakers.get("ERP") is breakers.get("ERP")
