"""Exports' progress for `GET /exports/{id}`: rows written so far, finished or not.

The process that streams an export keeps its status in memory (the last 1,000) and
writes it to ClickHouse's ``exports`` table at the start, every few seconds and at the
end, so every API replica behind a load balancer can answer for it."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

from projections.clickhouse import ClickHouse
from streams.times import iso_ms


@dataclass
class ExportStatus:
    export_id: str
    kind: str
    format: str
    rows: int = 0
    finished: bool = False
    started_at: str = ""
    finished_at: str | None = None
    error: str | None = None
    tenant: str = field(default="default", repr=False)
    started_ms: int = field(default=0, repr=False)
    finished_ms: int | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for internal in ("tenant", "started_ms", "finished_ms"):
            del out[internal]
        return out

    def end(self, error: str | None = None) -> None:
        self.finished, self.error = error is None, error
        self.finished_ms = int(time.time() * 1000)
        self.finished_at = iso_ms(self.finished_ms)


class ExportRegistry:
    """The API process's recent exports (the last ``size``), for `GET /exports/{id}`."""

    def __init__(self, size: int = 1000) -> None:
        self._size = size
        self._items: OrderedDict[str, ExportStatus] = OrderedDict()

    def start(self, kind: str, fmt: str, tenant: str = "default") -> ExportStatus:
        now = int(time.time() * 1000)
        status = ExportStatus(f"exp_{uuid.uuid4().hex[:16]}", kind, fmt, started_at=iso_ms(now),
                              tenant=tenant, started_ms=now)  # fmt: skip
        self._items[status.export_id] = status
        while len(self._items) > self._size:
            self._items.popitem(last=False)
        return status

    def get(self, export_id: str) -> ExportStatus | None:
        return self._items.get(export_id)


COLUMNS = ("export_id", "tenant", "kind", "format", "rows", "finished", "error", "started_at",
           "finished_at", "updated_at")  # fmt: skip


async def save(ch: ClickHouse, database: str, status: ExportStatus) -> None:
    """Write ``status`` as it is now (the newest row of an export wins)."""
    row = (status.export_id, status.tenant, status.kind, status.format, status.rows,
           int(status.finished), status.error, status.started_ms, status.finished_ms,
           time.time_ns())  # fmt: skip
    await ch.insert("exports", [[v] for v in row], COLUMNS, database=database)


async def load(ch: ClickHouse, database: str, export_id: str) -> ExportStatus | None:
    """An export another process streams (or streamed), as it last wrote it."""
    rows = await ch.query(
        f"SELECT export_id, tenant, kind, format, rows, finished, error, "
        f"toUnixTimestamp64Milli(started_at) AS started, "
        f"toUnixTimestamp64Milli(finished_at) AS ended "
        f"FROM {database}.exports FINAL WHERE export_id = {{id:String}}", {"id": export_id})
    if not rows:
        return None
    r = rows[0]
    return ExportStatus(r["export_id"], r["kind"], r["format"], rows=int(r["rows"]),
                        finished=bool(r["finished"]), started_at=iso_ms(int(r["started"])),
                        finished_at=iso_ms(int(r["ended"])) if r["ended"] is not None else None,
                        error=r["error"], tenant=r["tenant"], started_ms=int(r["started"]),
                        finished_ms=r["ended"])  # fmt: skip
