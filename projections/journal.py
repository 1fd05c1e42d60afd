"""The journal: what the API accepted, written to ClickHouse before it goes to Kafka.

One writer per API process group-commits concurrent requests (one chDB insert costs
~10 ms whatever its size): it takes what queued up while the previous commit ran (up to
``max_rows``; commits at least ``window`` apart), gives the entries increasing
``journal_pos`` values, inserts them, appends their messages to the topics in that
order, and only then answers the waiting requests. The next group is inserted while the
previous one is being published. ``paused()`` holds new groups back (requests wait) until
what was under way is on its topics: a topic generation switch runs inside it. A commit
that holds a saved workflow's or step type's change also writes its versioned row
(``projections.definition_tables``) before anyone is answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from projections import definition_tables
from projections.clickhouse import ClickHouse, identifier
from runledger.metrics import JOURNAL_COMMIT_SECONDS
from streams.times import iso_ms

log = logging.getLogger("runledger.journal")
COLUMNS = ["journal_pos", "received_at", "tenant", "actor", "action", "execution_id", "ids",
           "topic", "payload"]  # fmt: skip


@dataclass(frozen=True)
class Entry:
    """One accepted message: what, who, and the exact bytes that go on the topic (no
    topic: a change that lives in ClickHouse only, such as a saved workflow)."""

    action: str
    execution_id: str
    ids: tuple[str, ...]
    topic: str
    payload: bytes
    received_at: int
    tenant: str = "default"
    actor: str = "anonymous"
    journal_pos: int = 0  # given by the writer


Publish = Callable[[Sequence[tuple[str, str, bytes]]], Awaitable[None]]


async def insert_entries(ch: ClickHouse, database: str, entries: Sequence[Entry],
                         positions: Sequence[int], token: str | None = None) -> None:  # fmt: skip
    """Insert ``entries`` into the journal at ``positions`` (``token``: the insert's
    deduplication token)."""
    columns: list[list[Any]] = [
        list(positions), [e.received_at for e in entries], [e.tenant for e in entries],
        [e.actor for e in entries], [e.action for e in entries],
        [e.execution_id for e in entries], [list(e.ids) for e in entries],
        [e.topic for e in entries], [e.payload for e in entries],
    ]  # fmt: skip
    await ch.insert("journal", columns, COLUMNS, database=database, token=token)


@dataclass
class _Pending:
    entries: Sequence[Entry]
    done: asyncio.Future[list[int]] = field(default_factory=lambda: asyncio.get_running_loop()
                                            .create_future())  # fmt: skip


async def journal_top(
    ch: ClickHouse, database: str, *, after: int = 0, before_ms: int | None = None
) -> int:
    """The highest journal_pos (above ``after``, received before ``before_ms``), or 0."""
    where = "journal_pos > {after:UInt64}"
    if before_ms is not None:
        where += " AND received_at < fromUnixTimestamp64Milli({before:Int64}, 'UTC')"
    rows = await ch.query(f"SELECT max(journal_pos) AS p FROM {identifier(database)}.journal "
                          f"WHERE {where}", {"after": after, "before": before_ms or 0})  # fmt: skip
    return int(rows[0]["p"] or 0) if rows else 0


class JournalWriter:
    def __init__(
        self, ch: ClickHouse, database: str, publish: Publish, *, window: float = 0.01,
        max_rows: int = 2_000,
    ) -> None:  # fmt: skip
        self.ch = ch
        self.database = identifier(database)
        self.publish = publish
        self.window = window
        self.max_rows = max_rows
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._last_pos = 0
        self._last_insert_at = 0.0
        self.commits = 0
        self.last_commit_ms = 0.0
        self._open = asyncio.Event()
        self._open.set()
        self._busy = 0  # groups journaled and not yet published (or failed)
        self._idle = asyncio.Event()
        self._idle.set()
        self._definitions_behind = False  # a change journaled without its row

    async def start(self) -> None:
        self._last_pos = await journal_top(self.ch, self.database)
        await definition_tables.repair(self.ch, self.database)
        self._task = asyncio.create_task(self._run(), name="journal-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """Inside: nothing new is journaled or appended; every group journaled before is
        on its topics (or failed). Requests arriving meanwhile wait, then go on."""
        self._open.clear()
        try:
            await self._idle.wait()
            yield
        finally:
            self._open.set()

    async def append(self, entries: Sequence[Entry]) -> list[int]:
        """Journal and publish ``entries``; returns their journal positions."""
        if self._task is None or self._task.done():
            raise RuntimeError("journal writer is not running")
        pending = _Pending(entries)
        self._queue.put_nowait(pending)
        return await pending.done

    def _next_positions(self, n: int) -> list[int]:
        # Monotonic, and close to the wall clock (µs) so positions of several API
        # processes writing one ClickHouse server interleave roughly in time order.
        start = max(self._last_pos + 1, int(time.time() * 1_000_000))
        self._last_pos = start + n - 1
        return list(range(start, start + n))

    async def _run(self) -> None:
        # Pipelined: the next group is collected and inserted while the previous one is
        # still being published; publishes stay in journal_pos order.
        to_publish: asyncio.Queue[tuple[list[_Pending], list[Entry]]] = asyncio.Queue(4)
        publisher = asyncio.create_task(self._publish_in_order(to_publish))
        try:
            while True:
                group = await self._collect()
                entries = [e for p in group for e in p.entries]
                await self._open.wait()
                self._busy_by(+1)
                try:
                    await self._insert(entries)
                except Exception as exc:
                    self._busy_by(-1)
                    self._fail(group, exc)
                    continue
                await to_publish.put((group, entries))
        finally:
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher

    def _busy_by(self, n: int) -> None:
        self._busy += n
        if self._busy:
            self._idle.clear()
        else:
            self._idle.set()

    async def _collect(self) -> list[_Pending]:
        """What queued up meanwhile, waiting only as long as needed to keep commits at
        least ``window`` apart (a chDB insert costs ~10 ms whatever its size)."""
        first = await self._queue.get()
        group = [first]
        rows = len(first.entries)
        deadline = self._last_insert_at + self.window
        while rows < self.max_rows:
            if self._queue.empty():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    nxt = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                nxt = self._queue.get_nowait()
            group.append(nxt)
            rows += len(nxt.entries)
        return group

    async def _insert(self, entries: list[Entry]) -> None:
        self._last_insert_at = time.monotonic()
        positions = self._next_positions(len(entries))
        t0 = time.perf_counter()
        await insert_entries(self.ch, self.database, entries, positions,
                             token=f"journal-{positions[0]}-{positions[-1]}")  # fmt: skip
        await self._derive(entries, positions)
        self.last_commit_ms = (time.perf_counter() - t0) * 1000
        JOURNAL_COMMIT_SECONDS.observe(self.last_commit_ms / 1000)
        for e, pos in zip(entries, positions, strict=True):
            object.__setattr__(e, "journal_pos", pos)

    async def _derive(self, entries: list[Entry], positions: list[int]) -> None:
        """The saved definitions' rows of the changes in this commit, before anyone is
        answered; after a failure, every missing one (the commit failed with it)."""
        changes = [e.action for e in entries if e.action in definition_tables.ACTIONS]
        if not changes and not self._definitions_behind:
            return
        behind, self._definitions_behind = self._definitions_behind, True
        if behind:
            await definition_tables.repair(self.ch, self.database)
        else:
            await definition_tables.derive(self.ch, self.database, changes, positions[0],
                                           positions[-1])  # fmt: skip
        self._definitions_behind = False

    async def _publish_in_order(
        self, queue: asyncio.Queue[tuple[list[_Pending], list[Entry]]]
    ) -> None:
        while True:
            group, entries = await queue.get()
            try:
                await self.publish([(e.topic, e.execution_id, e.payload)
                                    for e in entries if e.topic])  # fmt: skip
            except Exception as exc:  # journaled but not on the topic: restore re-appends
                self._fail(group, exc)
                continue
            finally:
                self._busy_by(-1)
            self.commits += 1
            for p in group:
                if not p.done.done():
                    p.done.set_result([e.journal_pos for e in p.entries])

    @staticmethod
    def _fail(group: list[_Pending], exc: Exception) -> None:
        log.warning("journal commit of %d requests failed: %r", len(group), exc)
        for p in group:
            if not p.done.done():
                p.done.set_exception(exc)


async def latest_payload(ch: ClickHouse, database: str, action: str) -> str | None:
    """The payload of the newest journal entry of ``action`` (a settings change made
    through the API: limits, retention), if there is one."""
    rows = await ch.query(
        f"SELECT payload FROM {identifier(database)}.journal WHERE action = {{a:String}} "
        "ORDER BY journal_pos DESC LIMIT 1", {"a": action})  # fmt: skip
    return rows[0]["payload"] if rows else None


async def audit_log(
    ch: ClickHouse, database: str, *, since_ms: int | None = None, until_ms: int | None = None,
    actor: str | None = None, action: str | None = None, execution_id: str | None = None,
    tenant: str | None = None, after_pos: int = 0, limit: int = 100,
) -> list[dict[str, Any]]:  # fmt: skip
    """Who did what and when, oldest first, after ``after_pos`` (the cursor)."""
    db = identifier(database)
    where = ["journal_pos > {after:UInt64}"]
    params: dict[str, Any] = {"after": after_pos, "limit": limit}
    for column, value, kind in (("actor", actor, "String"), ("action", action, "String"),
                                ("execution_id", execution_id, "String"),
                                ("tenant", tenant, "String")):  # fmt: skip
        if value is not None:
            where.append(f"{column} = {{{column}:{kind}}}")
            params[column] = value
    if since_ms is not None:
        where.append("received_at >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')")
        params["since"] = since_ms
    if until_ms is not None:
        where.append("received_at < fromUnixTimestamp64Milli({until:Int64}, 'UTC')")
        params["until"] = until_ms
    rows = await ch.query(
        "SELECT journal_pos, toUnixTimestamp64Milli(received_at) AS at, tenant, actor, action, "
        f"execution_id, ids FROM {db}.journal WHERE " + " AND ".join(where)
        + " ORDER BY journal_pos LIMIT {limit:UInt32}", params)
    return [{"journal_pos": int(r["journal_pos"]), "received_at": iso_ms(int(r["at"])),
             "tenant": r["tenant"], "actor": r["actor"], "action": r["action"],
             "execution_id": r["execution_id"], "ids": list(r["ids"])} for r in rows]
