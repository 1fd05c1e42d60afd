"""The outcomes of the tasks the executors of one data dir finished, kept on disk.

A task whose outcome was sent can come again: redelivered around a rebalance or a
restart, or sent again by the worker after the embedded broker died before the outcome
reached ClickHouse (the broker keeps only memory, and the restore rebuilds it from
ClickHouse, where that outcome never arrived). Running it again would call the system a
second time for a step that had succeeded: the fault test caught one such second call
with the broker killed 11 s after the step's call. So each outcome is written here
before it is sent, and a task found here has its recorded outcome sent again instead
(the worker applies an outcome once: it is known by task id and phase).

SQLite in WAL mode with ``synchronous=NORMAL``: a committed row survives the process
being killed (not a power cut; on Apache Kafka the sent outcome is durable in the broker
anyway). A write takes ~65 µs and a lookup ~6 µs (2 cores), so the executor calls it on
its event loop. The executor processes of one data dir share the file (SQLite locks);
rows older than ``RETENTION_MS`` are pruned every ``PRUNE_EVERY`` writes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

RETENTION_MS = 7 * 24 * 3600 * 1000
PRUNE_EVERY = 10_000


class Outcomes:
    """task id → the outcome message (bytes) sent for it."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS outcomes (task_id TEXT PRIMARY KEY, "
                         "outcome BLOB NOT NULL, at INTEGER NOT NULL)")  # fmt: skip
        self._writes = 0

    def get(self, task_id: str) -> bytes | None:
        row = self._db.execute("SELECT outcome FROM outcomes WHERE task_id = ?",
                               (task_id,)).fetchone()  # fmt: skip
        return None if row is None else bytes(row[0])

    def put(self, task_id: str, outcome: bytes, at_ms: int) -> None:
        """Record ``outcome`` (committed when this returns)."""
        self._db.execute("INSERT OR REPLACE INTO outcomes VALUES (?, ?, ?)",
                         (task_id, outcome, at_ms))  # fmt: skip
        self._writes += 1
        if self._writes % PRUNE_EVERY == 0:
            self._db.execute("DELETE FROM outcomes WHERE at < ?", (at_ms - RETENTION_MS,))

    def close(self) -> None:
        self._db.close()
