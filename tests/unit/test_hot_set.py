"""Which executions leave a worker's table, and when (streams/hot_set.py)."""

from __future__ import annotations

import pytest

from streams.hot_set import HotSet
from streams.state import ExecutionState

HOT = HotSet(finished_ttl_ms=900_000, idle_ttl_ms=300_000)
AT = 1_700_000_000_000  # the last event


def state(**fields) -> ExecutionState:
    return ExecutionState(execution_id="e1", last_activity_at=AT, **fields)


def test_a_finished_execution_leaves_the_finished_ttl_after_its_last_event() -> None:
    done = state(status="failed", mode="orchestrated", parent_execution_id="p")
    assert HOT.leaves_at(done) == AT + 900_000
    assert not HOT.gone(done, AT + 899_999) and HOT.gone(done, AT + 900_000)


def test_a_reported_execution_with_no_end_leaves_the_idle_ttl_after_its_last_event() -> None:
    open_ = state()
    assert HOT.leaves_at(open_) == AT + 300_000
    assert not HOT.gone(open_, AT + 299_999) and HOT.gone(open_, AT + 300_000)
    assert HotSet(finished_ttl_ms=900_000, idle_ttl_ms=0).leaves_at(open_) is None


@pytest.mark.parametrize("fields", [
    {"mode": "orchestrated"},  # its timers and step tasks live in the worker
    {"status": "paused"},
    {"status": "queued", "admission": True},
    {"admission": True},  # holds a slot of the admission queue
    {"parent_execution_id": "parent"},  # its parent's worker sends it stops
])  # fmt: skip
def test_an_unfinished_execution_others_send_messages_to_stays(fields: dict) -> None:
    st = state(**fields)
    assert HOT.leaves_at(st) is None
    assert not HOT.gone(st, AT + 10 * 86_400_000)
