"""Archived states of executions a worker may have evicted, looked up for many requests
in one query.

A command for an execution this API has not seen lately must learn whether that
execution may have left the worker's table (streams/hot_set.py): finished, or reported
and idle for long. Its archived state then goes in front of the command (api/accept.py).

One query per request put a ClickHouse read behind every start; with 400 starts/s
offered (benchmarks/orchestrated.py) the readers held over half of the API process's
samples (py-spy) and starts were accepted at ~105/s. Requests that come while
a lookup runs wait for the next one, which asks for all their ids at once; when nothing
runs, a lookup starts at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from runledger.settings import Settings
from streams.state import ExecutionState

Load = Callable[[set[str]], Awaitable[dict[str, ExecutionState]]]
Waiting = list[tuple[set[str], "asyncio.Future[dict[str, ExecutionState]]"]]


class ArchiveLookup:
    def __init__(self, load: Load) -> None:
        self._load = load  # ids → the archived states of those that may be evicted
        self._waiting: Waiting = []
        self._running: asyncio.Task[None] | None = None

    async def maybe_evicted(self, ids: set[str]) -> dict[str, ExecutionState]:
        """The archived state of each of ``ids`` that a worker may have evicted."""
        fut: asyncio.Future[dict[str, ExecutionState]] = (
            asyncio.get_running_loop().create_future())  # fmt: skip
        self._waiting.append((ids, fut))
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._drain(), name="archive-lookup")
        return await fut

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                found = await self._load(set().union(*(ids for ids, _ in batch)))
            except Exception as exc:  # each waiting request answers with it
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for ids, fut in batch:
                if not fut.done():  # not a request that went away meanwhile
                    fut.set_result({i: found[i] for i in ids if i in found})


def hot_seconds(settings: Settings) -> float:
    """How long an execution found not evicted (or brand new) stays so, at least: half the
    shortest time a worker keeps one after its last event (streams/hot_set.py)."""
    return min(settings.finished_ttl, settings.idle_ttl or settings.finished_ttl) / 2


def idle_before(settings: Settings, now_ms: int) -> int | None:
    """A reported execution idle since before this (epoch ms) may be evicted within
    ``hot_seconds``: its archived state goes in front of its next message. None: they are
    never evicted unfinished (RUNLEDGER_IDLE_TTL=0)."""
    if not settings.idle_ttl:
        return None
    return now_ms - int((settings.idle_ttl - hot_seconds(settings)) * 1000)
