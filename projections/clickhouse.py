"""The one ClickHouse handle of a process, chDB (``chdb:///dir``) or server (``http://…``).

chDB runs inside this process and its calls block, so nothing here runs on the event
loop: writes go to one dedicated thread and reads to a small pool, each thread with its
own clickhouse-connect client (chDB serialises calls per client handle, so one client per
thread lets reads run side by side and while an insert is in flight: a long export does
not hold up a lookup, and the statements of one statistics answer run together). chDB
lets one process open one data dir for its whole life; several clients on that same dir
share the engine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import clickhouse_connect
from clickhouse_connect.driver.client import Client

log = logging.getLogger(__name__)

T = TypeVar("T")
READERS = 3  # reader threads: two statements of one answer at once, plus one more caller
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Every session's defaults. ClickHouse JIT-compiles an aggregation on its third use: the
# fourth workflow statistics answer of a process took 140 ms instead of 30, and the
# compiled ones were no faster (1 M executions, medians 29.8-32.2 ms either way).
DEFAULT_SETTINGS: dict[str, Any] = {"compile_aggregate_expressions": 0}
# chDB's allocator (jemalloc) keeps freed pages for 5 s and returns them only when the same
# arena allocates again: at 3,500 events/s the API's RSS swung between ~910 and 1,410 MB
# (benchmarks/memory.py). A background thread returning them after 1 s kept it between
# 861 and 991 MB, and cost less CPU, not more (purging at once cost ~40 µs more per
# one-event request; deploy/CAPACITY.md). jemalloc reads this once, when chDB loads; an
# operator's own JE_MALLOC_CONF wins.
CHDB_ALLOCATOR = "background_thread:true,dirty_decay_ms:1000"


def identifier(name: str) -> str:
    """``name`` if it is safe to interpolate into SQL as a database/table name."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a valid ClickHouse identifier: {name!r}")
    return name


class ClickHouse:
    """Async access to ClickHouse: writes on one dedicated thread, reads on a pool."""

    def __init__(
        self, dsn: str, *, settings: Mapping[str, Any] | None = None, readers: int = READERS
    ) -> None:
        self.dsn = dsn
        if self.is_chdb and "chdb" not in sys.modules:
            os.environ.setdefault("JE_MALLOC_CONF", CHDB_ALLOCATOR)
        self._settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="clickhouse-write")
        self._reader = ThreadPoolExecutor(readers, thread_name_prefix="clickhouse-read")
        self._readers = readers
        self._clients: dict[str, Client] = {}  # one per thread name, made on that thread
        self._lock = threading.Lock()
        # (database, table, column names) -> column types; skips a DESCRIBE per insert.
        self._insert_types: dict[tuple[str | None, str, tuple[str, ...]], Any] = {}
        self._closed = False

    @property
    def is_chdb(self) -> bool:
        return self.dsn.startswith("chdb:")

    # ------------------------------------------------------------------ threads & clients

    def _client(self) -> Client:
        name = threading.current_thread().name
        client = self._clients.get(name)
        if client is None:
            if self._closed:
                raise RuntimeError("ClickHouse handle is closed")
            client = clickhouse_connect.get_client(dsn=self.dsn, settings=self._settings)
            with self._lock:
                self._clients[name] = client
        return client

    async def _on(self, pool: ThreadPoolExecutor, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, fn)

    async def on_writer(self, fn: Callable[[Client], T]) -> T:
        """Run ``fn(client)`` on the writer thread (for DDL or bespoke writes)."""
        return await self._on(self._writer, lambda: fn(self._client()))

    async def on_reader(self, fn: Callable[[Client], T]) -> T:
        """Run ``fn(client)`` on a reader thread (e.g. a ``raw_query`` export page)."""
        return await self._on(self._reader, lambda: fn(self._client()))

    # ------------------------------------------------------------------ the blocking calls

    def _insert(
        self,
        table: str,
        data: Sequence[Sequence[Any]],
        column_names: Sequence[str],
        database: str | None,
        column_oriented: bool,
        token: str | None,
    ) -> int:
        client = self._client()
        names = tuple(column_names)
        key = (database, table, names)
        types = self._insert_types.get(key)
        if types is None:
            types = client.create_insert_context(table, list(names), database=database).column_types
            self._insert_types[key] = types
        settings = {"insert_deduplication_token": token} if token else None
        started = time.perf_counter()
        client.insert(
            table, data, column_names=list(names), database=database, column_types=types,
            column_oriented=column_oriented, settings=settings,
        )  # fmt: skip
        rows = len(data[0]) if column_oriented and data else len(data)
        log.debug("inserted %d rows into %s.%s in %.1f ms", rows, database, table,
                  (time.perf_counter() - started) * 1000)  # fmt: skip
        return rows

    def _query(self, sql: str, params: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        result = self._client().query(sql, parameters=dict(params or {}))
        names = result.column_names
        return [dict(zip(names, row, strict=True)) for row in result.result_rows]

    def _command(self, sql: str, params: Mapping[str, Any] | None) -> Any:
        result = self._client().command(sql, parameters=dict(params) if params else None)
        self._insert_types.clear()  # DDL may have changed a table's columns
        return result

    # ------------------------------------------------------------------ async API

    async def insert(
        self,
        table: str,
        data: Sequence[Sequence[Any]],
        column_names: Sequence[str],
        *,
        database: str | None = None,
        column_oriented: bool = True,
        token: str | None = None,
    ) -> int:
        """Insert (column-oriented by default; epoch-ms ints for DateTime64 columns).

        ``token`` becomes ``insert_deduplication_token``: with the table's
        ``non_replicated_deduplication_window`` a re-sent batch is dropped.
        """
        return await self._on(
            self._writer,
            lambda: self._insert(table, data, column_names, database, column_oriented, token),
        )

    async def query(
        self, sql: str, params: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        return await self._on(self._reader, lambda: self._query(sql, params))

    async def command(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        """DDL and other statements without a result set (runs on the writer thread)."""
        return await self._on(self._writer, lambda: self._command(sql, params))

    async def ping(self) -> bool:
        try:
            rows = await self.query("SELECT 1 AS ok")
        except Exception as exc:  # any failure means "not reachable"
            log.warning("ClickHouse ping failed: %r", exc)
            return False
        return bool(rows and rows[0]["ok"] == 1)

    def close(self) -> None:
        """Close every client (each on its own thread) and stop the threads."""
        if self._closed:
            return
        self._closed = True
        for pool, size in ((self._writer, 1), (self._reader, self._readers)):
            # One closing task per thread: each waits at the barrier until all have
            # started, so no thread can take two and every thread takes one.
            barrier = threading.Barrier(size)
            for done in [pool.submit(self._close_own_client, barrier) for _ in range(size)]:
                done.result()
            pool.shutdown(wait=True)

    def _close_own_client(self, barrier: threading.Barrier) -> None:
        barrier.wait()
        client = self._clients.pop(threading.current_thread().name, None)
        if client is not None:
            client.close()
