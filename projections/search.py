"""Execution search (``GET /executions``): newest first, keyset-paged, with step counts."""

from __future__ import annotations

import time
from typing import Any

from projections.clickhouse import ClickHouse, identifier
from projections.filters import Filters, executions_where
from projections.schema import DEFAULT_DATABASE
from projections.tracking import decode_search_cursor, encode_cursor
from streams.contracts import iso_ms


def _iso(ms: int | None) -> str | None:
    return iso_ms(int(ms)) if ms is not None else None


# Newest first reads windows going back from the cursor (or now), wider each time, until a
# page is full: a FINAL over a slice of the start-time key instead of over every row.
SPANS_MS = (3_600_000, 28_800_000, 230_400_000, 1_843_200_000, None)
_COLUMNS = (
    "execution_id, workflow_id, plan_id, mode, status, environment, progress, "
    "toUnixTimestamp64Milli(started_at) AS started, toUnixTimestamp64Milli(finished_at) AS "
    "finished, duration_ms, error_type, systems, modules, steps_total, steps_succeeded, "
    "steps_failed, steps_running, labels"
)


async def search_executions(
    ch: ClickHouse, f: Filters, limit: int = 50, cursor: str | None = None, *,
    now_ms: int | None = None, database: str = DEFAULT_DATABASE,
) -> dict[str, Any]:  # fmt: skip
    """Executions matching ``f``, ordered by (started_at, execution_id) descending.

    The cursor is the last item's (started_at, execution_id); the next page holds the rows
    strictly after it in that order, so a page never repeats or skips a row while newer
    executions arrive. Raises ValueError for a cursor this module did not make.
    ``step_counts``: ``total`` counts the steps that have at least one started attempt,
    ``succeeded`` / ``failed`` / ``running`` those whose last attempt is so.
    """
    db = identifier(database)
    where, params = executions_where(f, db)
    top = now_ms if now_ms is not None else int(time.time() * 1000)
    if cursor:
        c_ts, c_eid = decode_search_cursor(cursor)
        where += (" AND started_at <= fromUnixTimestamp64Milli({c_ts:Int64}, 'UTC') "  # for the key
                  "AND (started_at, execution_id) < "
                  "(fromUnixTimestamp64Milli({c_ts:Int64}, 'UTC'), {c_eid:String})")  # fmt: skip
        params.update(c_ts=c_ts, c_eid=c_eid)
        top = c_ts
    if f.until_ms is not None:
        top = min(top, f.until_ms)
    rows: list[dict[str, Any]] = []
    upper: int | None = None  # the previous window's lower bound
    for span in SPANS_MS:
        lower = None if span is None else top - span
        if f.since_ms is not None and (lower is None or lower <= f.since_ms):
            lower = None  # the filter's own bound applies
        window, bounds = "", {"limit": limit + 1 - len(rows)}
        if lower is not None:
            window += " AND started_at >= fromUnixTimestamp64Milli({w_lo:Int64}, 'UTC')"
            bounds["w_lo"] = lower
        if upper is not None:
            window += " AND started_at < fromUnixTimestamp64Milli({w_hi:Int64}, 'UTC')"
            bounds["w_hi"] = upper
        rows += await ch.query(
            f"SELECT {_COLUMNS} FROM {db}.executions_by_time FINAL WHERE {where}{window} "
            "ORDER BY started_at DESC, execution_id DESC LIMIT {limit:UInt32} "
            "SETTINGS max_threads = 1",  # a page read in key order: a 2nd stream only costs
            {**params, **bounds},
        )
        if len(rows) > limit or lower is None:
            break
        upper = lower
    page = rows[:limit]
    items = [
        {"execution_id": r["execution_id"], "workflow_id": r["workflow_id"],
         "plan_id": r["plan_id"], "mode": r["mode"], "status": r["status"],
         "environment": r["environment"], "progress": round(float(r["progress"]), 4),
         "started_at": _iso(r["started"]), "finished_at": _iso(r["finished"]),
         "duration_ms": r["duration_ms"], "error_type": r["error_type"],
         "step_counts": {k: int(r[f"steps_{k}"]) for k in ("total", "succeeded", "failed",
                                                            "running")},
         "systems": list(r["systems"]), "modules": list(r["modules"]),
         "labels": dict(r["labels"])}
        for r in page
    ]  # fmt: skip
    next_cursor = None
    if len(rows) > limit and page:
        next_cursor = encode_cursor(int(page[-1]["started"]), page[-1]["execution_id"])
    return {"items": items, "next_cursor": next_cursor}
