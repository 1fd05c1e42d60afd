"""The events tail's recent events stay bounded in all, not only per execution: long
executions cannot make it hold millions of events (api/tail.py)."""

from __future__ import annotations

import orjson
import pytest

from api import tail
from runledger.settings import Settings


def _message(eid: str, first: int, n: int) -> bytes:
    return orjson.dumps({"events": [{"execution_id": eid, "seq": s, "cause_id": f"c{s}"}
                                    for s in range(first, first + n)]})  # fmt: skip


async def test_the_oldest_executions_go_once_the_events_in_all_pass_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tail, "RECENT_EVENTS", 10)
    monkeypatch.setattr(tail, "RECENT_PER_EXECUTION", 4)
    t = tail.EventTail(Settings())
    t._dispatch(_message("a", 1, 6))  # keeps 4 of its 6
    t._dispatch(_message("b", 1, 4))
    assert [e["seq"] for e in t.recent_after("a", 0)] == [3, 4, 5, 6]
    t._dispatch(_message("c", 1, 3))  # 11 in all: a, the oldest, goes
    assert t.recent_after("a", 0) == []
    assert [e["seq"] for e in t.recent_after("b", 2)] == [3, 4]
    assert [e["seq"] for e in t.recent_after("c", 0)] == [1, 2, 3]
    t._dispatch(_message("c", 4, 3))  # c holds 4 (its last), b 4: 8 in all, both stay
    assert [e["seq"] for e in t.recent_after("c", 0)] == [3, 4, 5, 6]
    assert len(t.recent_after("b", 0)) == 4


async def test_one_execution_alone_keeps_its_recent_events_whatever_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tail, "RECENT_EVENTS", 2)
    t = tail.EventTail(Settings())
    t._dispatch(_message("a", 1, 5))
    assert [e["seq"] for e in t.recent_after("a", 3)] == [4, 5]
