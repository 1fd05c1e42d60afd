"""One-line JSON logs on stderr (stdlib only).

Code that works for one execution without naming it in every call (a step executor
plugin running a task) runs inside ``execution_context``: every line it logs then
carries ``execution_id`` as a field, so the lines of one execution can be found by it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

_EXECUTION: ContextVar[str | None] = ContextVar("runledger_log_execution_id", default=None)


@contextmanager
def execution_context(execution_id: str) -> Iterator[None]:
    """Lines logged inside (in this task or thread) carry ``execution_id``."""
    token = _EXECUTION.set(execution_id)
    try:
        yield
    finally:
        _EXECUTION.reset(token)

_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object; ``extra=`` fields are kept as keys."""

    def __init__(self, process_name: str) -> None:
        super().__init__()
        self.process_name = process_name

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "proc": self.process_name,
            "pid": record.process or os.getpid(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        bound = _EXECUTION.get()
        if bound is not None:
            entry["execution_id"] = bound
        for key, value in vars(record).items():  # an explicit extra= wins
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def setup_logging(level: str | int = "INFO", process_name: str = "runledger") -> None:
    """Route all logging to stderr as JSON lines tagged with ``process_name``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(process_name))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # Faust warns "producer buffer full" whenever more than 100 changelog writes wait to
    # be sent: at load, after every batch of the worker (one write per execution it
    # changed). Nothing to act on; raising Faust's limit instead made the worker slower
    # (stop 33, benchmarks/orchestrated.py).
    logging.getLogger("faust.transport.producer").setLevel(logging.ERROR)
