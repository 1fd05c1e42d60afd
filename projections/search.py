"""Execution search (``GET /executions``): newest first, keyset-paged, with step counts."""

from __future__ import annotations

from typing import Any

from projections.clickhouse import ClickHouse, identifier
from projections.filters import Filters, executions_where
from projections.schema import DEFAULT_DATABASE
from projections.tracking import decode_search_cursor, encode_cursor
from streams.contracts import iso_ms


def _iso(ms: int | None) -> str | None:
    return iso_ms(int(ms)) if ms is not None else None


async def search_executions(
    ch: ClickHouse, f: Filters, limit: int = 50, cursor: str | None = None, *,
    database: str = DEFAULT_DATABASE,
) -> dict[str, Any]:  # fmt: skip
    """Executions matching ``f``, ordered by (started_at, execution_id) descending.

    The cursor is the last item's (started_at, execution_id); the next page holds the rows
    strictly after it in that order, so a page never repeats or skips a row while newer
    executions arrive. Raises ValueError for a cursor this module did not make.

    ``step_counts`` come from ``step_records`` (one small query for the page's ids, not
    the wide ``state`` column): ``total`` counts the steps that have at least one started
    attempt, ``succeeded`` / ``failed`` / ``running`` those whose last attempt is so.
    """
    db = identifier(database)
    where, params = executions_where(f, db)
    params["limit"] = limit + 1
    if cursor:
        c_ts, c_eid = decode_search_cursor(cursor)
        where += (" AND (started_at, execution_id) < "
                  "(fromUnixTimestamp64Milli({c_ts:Int64}, 'UTC'), {c_eid:String})")  # fmt: skip
        params.update(c_ts=c_ts, c_eid=c_eid)
    rows = await ch.query(
        "SELECT execution_id, workflow_id, plan_id, mode, status, environment, progress, "
        "toUnixTimestamp64Milli(started_at) AS started, "
        "toUnixTimestamp64Milli(finished_at) AS finished, duration_ms, error_type, systems, "
        f"modules FROM {db}.executions FINAL WHERE {where} "
        "ORDER BY started_at DESC, execution_id DESC LIMIT {limit:UInt32}",
        params,
    )
    page = rows[:limit]
    counts = await _step_counts(ch, db, f.tenant, [r["execution_id"] for r in page])
    empty = {"total": 0, "succeeded": 0, "failed": 0, "running": 0}
    items = [
        {"execution_id": r["execution_id"], "workflow_id": r["workflow_id"],
         "plan_id": r["plan_id"], "mode": r["mode"], "status": r["status"],
         "environment": r["environment"], "progress": round(float(r["progress"]), 4),
         "started_at": _iso(r["started"]), "finished_at": _iso(r["finished"]),
         "duration_ms": r["duration_ms"], "error_type": r["error_type"],
         "step_counts": counts.get(r["execution_id"], empty),
         "systems": list(r["systems"]), "modules": list(r["modules"])}
        for r in page
    ]  # fmt: skip
    next_cursor = None
    if len(rows) > limit and page:
        next_cursor = encode_cursor(int(page[-1]["started"]), page[-1]["execution_id"])
    return {"items": items, "next_cursor": next_cursor}


async def _step_counts(
    ch: ClickHouse, db: str, tenant: str, ids: list[str]
) -> dict[str, dict[str, int]]:
    if not ids:
        return {}
    rows = await ch.query(
        "SELECT execution_id, count() AS total, countIf(last = 'succeeded') AS succeeded, "
        "countIf(last = 'failed') AS failed, countIf(last = 'running') AS running FROM ("
        "SELECT execution_id, step_id, argMax(status, attempt) AS last "
        f"FROM {db}.step_records FINAL "
        "WHERE tenant = {tenant:String} AND execution_id IN {ids:Array(String)} "
        "GROUP BY execution_id, step_id) GROUP BY execution_id",
        {"tenant": tenant, "ids": ids},
    )
    return {r["execution_id"]: {k: int(r[k]) for k in ("total", "succeeded", "failed",
                                                         "running")} for r in rows}  # fmt: skip
