"""Streamed exports of records, executions or events as CSV, NDJSON or a JSON array.

Rows are read a bounded piece at a time (never OFFSET, never the whole result), so memory
stays at a few pieces whatever the size. Step records, the large kind, are formatted by
ClickHouse itself (CHDB.md §4: engine formatting runs at millions of rows/s, Python's csv
module at 0.3M): the selection is cut by start time into slices of about ``ENGINE_PAGE``
records, and two slices at a time come back as CSV or JSONEachRow bytes from two reader
threads, leaving the others free for the API's other reads. Executions and events carry
nested JSON (labels, data), so they are formatted in Python, where the masking can reach
into that JSON; they are read in keyset pages. Records and executions come in start order
(their tables' sort keys), events by execution and seq.

Masking (``streams.executors.masking.Masker``): a column whose name is masked is written
as ``***``; in nested data every masked key's value is. The stored rows are not changed.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
from collections import deque
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any, Literal

import orjson
from clickhouse_connect.driver.client import Client

from projections.clickhouse import ClickHouse, identifier
from projections.export_status import ExportStatus
from projections.filters import Filters, executions_where, records_where
from projections.queries import EVENT_SELECT, event_of
from streams.executors.masking import MASK, Masker
from streams.times import iso_ms

Kind = Literal["records", "executions", "events"]
Format = Literal["json", "ndjson", "csv"]
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson",
                 "json": "application/json"}  # fmt: skip
ENGINE_PAGE = 100_000  # CSV rows per page formatted by ClickHouse (~15 MB); JSON: half
AHEAD = 2  # engine-formatted pages fetched at once
PYTHON_PAGE = 5_000  # rows per page formatted here
# Parallel formatting only adds threads to the reader threads' two slices (1.0 → 1.3 M rows/s
# without it, measured). Reading in key order for the ORDER BY makes FINAL merge every
# range, even one part's that nothing overlaps; reading as usual and sorting the slice
# after costs less (a 100k-record slice: 66 → 46 ms, measured at 1 M executions).
_OUTPUT = ("SETTINGS date_time_output_format = 'iso', output_format_json_quote_64bit_integers = 0,"
           " format_csv_null_representation = '',"
           " output_format_parallel_formatting = 0, optimize_read_in_order = 0")  # fmt: skip

RECORD_COLUMNS = ("execution_id", "workflow_id", "plan_id", "step_id", "attempt", "system",
                  "module", "status", "started_at", "finished_at", "duration_ms", "error",
                  "error_type", "retryable")  # fmt: skip
EXECUTION_COLUMNS = ("execution_id", "workflow_id", "plan_id", "mode", "status", "progress",
                     "environment", "labels", "systems", "modules", "failed_steps",
                     "error_type", "started_at", "finished_at", "duration_ms",
                     "last_seq")  # fmt: skip
EVENT_COLUMNS = ("execution_id", "seq", "event_id", "cause_id", "event_type", "step_id",
                 "timestamp", "message", "data", "workflow_id", "system", "module", "tenant",
                 "labels", "received_at")  # fmt: skip
COLUMNS: dict[str, tuple[str, ...]] = {
    "records": RECORD_COLUMNS, "executions": EXECUTION_COLUMNS, "events": EVENT_COLUMNS,
}  # fmt: skip
# Times as epoch ms under other names (an alias named like a column would shadow it in WHERE).
_EXECUTION_SELECT = ", ".join(
    f"toUnixTimestamp64Milli({c}) AS {c}_ms" if c.endswith("_at") else c for c in EXECUTION_COLUMNS
)


# ----------------------------------------------------------------------------- framing


class _Framer:
    """Wraps pages of rows in the format's frame: the CSV header, the JSON array."""

    def __init__(self, fmt: Format, columns: tuple[str, ...]) -> None:
        self.fmt, self.columns, self.any = fmt, columns, False

    def head(self) -> bytes:
        if self.fmt != "csv":
            return b""
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(self.columns)
        return out.getvalue().encode()

    def page(self, lines: bytes) -> bytes:
        """``lines``: CSV rows or JSON objects, each ending in a newline."""
        if self.fmt != "json" or not lines:
            return lines
        prefix = b",\n" if self.any else b"[\n"
        self.any = True
        return prefix + lines.rstrip(b"\n").replace(b"\n", b",\n")

    def tail(self) -> bytes:
        if self.fmt != "json":
            return b""
        return b"\n]\n" if self.any else b"[]\n"


def _csv_value(value: Any) -> Any:
    if isinstance(value, dict | list | tuple):
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _python_lines(fmt: Format, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> bytes:
    if fmt != "csv":  # JSON objects, one per line (orjson escapes newlines in strings)
        return b"".join(orjson.dumps(r) + b"\n" for r in rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows([_csv_value(r.get(c)) for c in columns] for r in rows)
    return out.getvalue().encode()


# ----------------------------------------------------------------------------- pages


def _raw(sql: str, params: dict[str, Any], fmt: str, client: Client) -> bytes:
    return bytes(client.raw_query(sql, parameters=params, fmt=fmt))


_RECORD_KEY = "started_at, execution_id, step_id, attempt"
_START_MS = "toUnixTimestamp64Milli(started_at)"


async def _record_slices(ch: ClickHouse, db: str, where: str, params: dict[str, Any], page: int
                         ) -> list[tuple[int, str]]:  # fmt: skip
    """The selection cut by start time into slices of about ``page`` records: per slice in
    start order, its row count (as the plan is made) and its condition on ``started_at``.

    The cuts are approximate quantiles of the start times (no FINAL: they only size the
    slices); the counts are exact (FINAL). The first and last slice are open-ended, so
    records written while the export runs are in it if their slice is still to come."""
    total = await ch.query(f"SELECT count() AS n FROM {db}.step_records WHERE {where}", params)
    slices = -(-int(total[0]["n"]) // page) if total else 0
    cuts: list[int] = []
    if slices > 1:
        levels = ", ".join(f"{i / slices:.6f}" for i in range(1, slices))
        rows = await ch.query(f"SELECT quantiles({levels})({_START_MS}) AS q "
                              f"FROM {db}.step_records WHERE {where}", params)  # fmt: skip
        cuts = sorted({int(q) for q in rows[0]["q"]}) if rows else []
    counts = await ch.query(
        f"SELECT arrayCount(c -> c <= {_START_MS}, {{cuts:Array(Int64)}}) AS slice, count() AS n "
        f"FROM {db}.step_records FINAL WHERE {where} GROUP BY slice",
        {**params, "cuts": cuts},
    )
    rows_in = {int(r["slice"]): int(r["n"]) for r in counts}
    bounds = [None, *cuts, None]
    out = []
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        if rows_in.get(i):
            cond = "".join((f" AND {_START_MS} >= {lo}" if lo is not None else "",
                            f" AND {_START_MS} < {hi}" if hi is not None else ""))  # fmt: skip
            out.append((rows_in[i], cond))
    return out


async def _record_pages(ch: ClickHouse, db: str, f: Filters, fmt: Format, masker: Masker
                        ) -> AsyncIterator[tuple[int, bytes]]:  # fmt: skip
    """Step records in start order, formatted by ClickHouse: (rows, lines) per slice.

    ``AHEAD`` slices are fetched at once on the reader threads while the earlier ones are
    sent, so at most that many slices' bytes are held."""
    where, params = records_where(f, db)
    select = ", ".join(f"'{MASK}' AS {c}" if masker.is_masked(c) else c for c in RECORD_COLUMNS)
    engine_fmt = "CSV" if fmt == "csv" else "JSONEachRow"
    page = ENGINE_PAGE if fmt == "csv" else max(ENGINE_PAGE // 2, 1)  # JSON rows are ~2.4x
    pending: deque[tuple[int, asyncio.Future[bytes]]] = deque()
    try:
        for n, cond in await _record_slices(ch, db, where, params, page):
            sql = (f"SELECT {select} FROM {db}.step_records FINAL WHERE {where}{cond} "
                   f"ORDER BY {_RECORD_KEY} {_OUTPUT}")  # fmt: skip
            fetch = ch.on_reader(partial(_raw, sql, params, engine_fmt))
            pending.append((n, asyncio.ensure_future(fetch)))
            if len(pending) >= AHEAD:
                rows, lines = pending.popleft()
                yield rows, await lines
        while pending:
            rows, lines = pending.popleft()
            yield rows, await lines
    finally:
        for _, lines in pending:
            lines.cancel()


def _execution_row(r: dict[str, Any]) -> dict[str, Any]:
    row = {c: r.get(c) for c in EXECUTION_COLUMNS}
    row["labels"] = dict(r["labels"])
    row["systems"], row["modules"] = list(r["systems"]), list(r["modules"])
    row["progress"] = round(float(r["progress"]), 4)
    for c in ("started_at", "finished_at"):
        ms = r[f"{c}_ms"]
        row[c] = iso_ms(int(ms)) if ms is not None else None
    return row


def _event_row(r: dict[str, Any]) -> dict[str, Any]:
    event = event_of(r).model_dump(mode="json")
    return {c: event.get(c) for c in EVENT_COLUMNS}


async def _python_pages(ch: ClickHouse, db: str, f: Filters, kind: Kind
                        ) -> AsyncIterator[list[dict[str, Any]]]:  # fmt: skip
    """Executions (by id) or their events (by id, seq) as row dicts, a page at a time."""
    where, params = executions_where(f, db)
    if kind == "executions":  # in start order, as they are stored
        sql = (f"SELECT {_EXECUTION_SELECT} FROM {db}.executions_by_time FINAL WHERE {where} "
               "AND (started_at, execution_id) > (fromUnixTimestamp64Milli({k_t:Int64}, 'UTC'), "
               "{k_e:String}) ORDER BY started_at, execution_id LIMIT {page:UInt32}")  # fmt: skip
        to_row: Callable[[dict[str, Any]], dict[str, Any]] = _execution_row
    else:
        sql = (EVENT_SELECT + f"FROM {db}.events FINAL WHERE tenant = {{f_tenant:String}} "
               f"AND execution_id IN (SELECT execution_id FROM {db}.executions_by_time FINAL "
               f"WHERE {where}) AND execution_id >= {{k_e:String}} "
               "AND (execution_id, seq) > ({k_e:String}, {k_s:UInt64}) "
               "ORDER BY execution_id, seq LIMIT {page:UInt32}")  # fmt: skip
        to_row = _event_row
    last: dict[str, Any] = {"k_e": "", "k_s": 0, "k_t": -(2**62)}
    while True:
        rows = await ch.query(sql, {**params, **last, "page": PYTHON_PAGE})
        if not rows:
            return
        yield [to_row(r) for r in rows]
        if len(rows) < PYTHON_PAGE:
            return
        tail = rows[-1]
        last = {"k_e": tail["execution_id"], "k_s": int(tail.get("seq") or 0),
                "k_t": int(tail.get("started_at_ms") or 0)}  # fmt: skip


async def export_stream(
    ch: ClickHouse, database: str, *, kind: Kind, fmt: Format, filters: Filters,
    masker: Masker, status: ExportStatus | None = None,
) -> AsyncIterator[bytes]:  # fmt: skip
    """The export file as chunks of bytes (about one page each); ``status`` counts rows
    and is ended (finished, or the error) when the stream ends."""
    db = identifier(database)
    framer = _Framer(fmt, COLUMNS[kind])
    try:
        yield framer.head()
        if kind == "records":
            async for n, lines in _record_pages(ch, db, filters, fmt, masker):
                if status is not None:
                    status.rows += n
                yield framer.page(lines)
        else:
            async for rows in _python_pages(ch, db, filters, kind):
                masked = [masker(r) for r in rows]
                if status is not None:
                    status.rows += len(masked)
                yield framer.page(_python_lines(fmt, COLUMNS[kind], masked))
        yield framer.tail()
    except BaseException as exc:  # includes the client going away (GeneratorExit)
        if status is not None:
            status.end("cancelled" if isinstance(exc, GeneratorExit) else repr(exc))
        raise
    if status is not None:
        status.end()
