"""Executions known not to be archived skip the API's archive lookup; the memory of them
stays bounded however many executions the API starts."""

from __future__ import annotations

from collections import OrderedDict
from types import SimpleNamespace

from api import accept


def test_server_made_ids_are_remembered_and_the_memory_stays_bounded(monkeypatch) -> None:
    monkeypatch.setattr(accept, "HOT_IDS", 100)
    settings = SimpleNamespace(finished_ttl=600.0, idle_ttl=300.0)
    ctx = SimpleNamespace(hot_until=OrderedDict(), settings=settings)
    for i in range(250):
        accept.is_new(ctx, f"exec_{i}")  # type: ignore[arg-type]
    assert len(ctx.hot_until) == 100
    assert "exec_249" in ctx.hot_until and "exec_0" not in ctx.hot_until  # oldest go first
    accept.is_new(ctx, "exec_150")  # seen again: it goes last in line
    for i in range(250, 340):
        accept.is_new(ctx, f"exec_{i}")  # type: ignore[arg-type]
    assert "exec_150" in ctx.hot_until and "exec_151" not in ctx.hot_until
