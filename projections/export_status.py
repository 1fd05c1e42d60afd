"""What the API process knows of its exports: rows written so far, finished or not, for
`GET /exports/{id}` (the last 1,000 exports; an export is not stored anywhere else)."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any

from streams.contracts import iso_ms


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def end(self, error: str | None = None) -> None:
        self.finished, self.error = error is None, error
        self.finished_at = iso_ms(int(time.time() * 1000))


class ExportRegistry:
    """The API process's recent exports (the last ``size``), for `GET /exports/{id}`."""

    def __init__(self, size: int = 1000) -> None:
        self._size = size
        self._items: OrderedDict[str, ExportStatus] = OrderedDict()

    def start(self, kind: str, fmt: str) -> ExportStatus:
        status = ExportStatus(f"exp_{uuid.uuid4().hex[:16]}", kind, fmt,
                              started_at=iso_ms(int(time.time() * 1000)))  # fmt: skip
        self._items[status.export_id] = status
        while len(self._items) > self._size:
            self._items.popitem(last=False)
        return status

    def get(self, export_id: str) -> ExportStatus | None:
        return self._items.get(export_id)
