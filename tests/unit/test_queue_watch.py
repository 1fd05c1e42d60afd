"""The API's count of waiting executions (what a 429 past max_queued is read from)."""

from __future__ import annotations

from api import queue_watch
from api.queue_watch import QueueWatch


def ev(kind: str, eid: str) -> dict[str, str]:
    return {"event_type": kind, "execution_id": eid}


def test_accepted_starts_count_until_the_tail_shows_them_dequeued_or_finished():
    q = QueueWatch()
    q.seed([{"execution_id": "old", "since": 1}])
    q.accepted("a")
    q.accepted("b")
    assert len(q) == 3
    q.on_event(ev("execution_queued", "a"))  # now known to wait: counted once
    assert len(q) == 3
    q.on_event(ev("execution_dequeued", "a"))
    q.on_event(ev("execution_completed", "old"))
    assert len(q) == 1
    q.on_event(ev("step_started", "b"))  # other events change nothing
    assert len(q) == 1


def test_a_start_that_never_queues_stops_counting_after_a_while(monkeypatch):
    q = QueueWatch()
    q.accepted("again")  # e.g. a repeated start of a running execution: no event follows
    assert len(q) == 1
    monkeypatch.setattr(queue_watch, "PENDING_S", -1.0)
    assert len(q) == 0


def test_the_view_is_bounded():
    q = QueueWatch(cap=3)
    for i in range(10):
        q.on_event(ev("execution_queued", f"e{i}"))
    assert len(q) == 3 and list(q.waiting) == ["e7", "e8", "e9"]
