"""Finished executions' archived states, looked up for many requests in one query.

A command for an execution this API has not seen lately must learn whether that
execution has finished: its archived state then goes in front of the command
(api/accept.py). One query per request put a ClickHouse read behind every start; with
400 starts/s offered (benchmarks/orchestrated.py) the readers held over half of the API
process's samples (py-spy) and starts were accepted at ~105/s. Requests that come while
a lookup runs wait for the next one, which asks for all their ids at once; when nothing
runs, a lookup starts at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from streams.state import ExecutionState

Load = Callable[[set[str]], Awaitable[dict[str, ExecutionState]]]
Waiting = list[tuple[set[str], "asyncio.Future[dict[str, ExecutionState]]"]]


class ArchiveLookup:
    def __init__(self, load: Load) -> None:
        self._load = load  # ids → the archived states of those that finished
        self._waiting: Waiting = []
        self._running: asyncio.Task[None] | None = None

    async def finished(self, ids: set[str]) -> dict[str, ExecutionState]:
        """The archived state of each of ``ids`` that has finished."""
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
