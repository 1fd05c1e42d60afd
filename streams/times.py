"""Timestamps as the contracts carry them: epoch milliseconds and ISO-8601 text in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache


def iso_ms(ms: int) -> str:
    """Epoch milliseconds → ``2025-09-01T10:20:30.456Z``."""
    seconds, millis = divmod(int(ms), 1000)
    return f"{_iso_second(seconds)}.{millis:03d}Z"


@lru_cache(maxsize=4096)
def _iso_second(seconds: int) -> str:
    # Cached: a batch's events fall in a few seconds, and strftime was ~6 % of the worker.
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def ms_of(iso: str) -> int:
    """ISO-8601 (``Z`` or offset; naive means UTC) → epoch milliseconds."""
    dt = datetime.fromisoformat(iso)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)
