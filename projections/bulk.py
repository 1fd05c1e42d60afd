"""Bulk control (`POST /executions/bulk`): which executions a filter selects, the bulk
operation as journaled, and what the worker made of each of its commands."""

from __future__ import annotations

from typing import Any

import orjson

from projections.clickhouse import ClickHouse, identifier
from projections.filters import Filters, executions_where

_CHUNK = 5_000


async def matching_ids(ch: ClickHouse, f: Filters, limit: int, *, database: str) -> list[str]:
    """The ids of the executions ``f`` selects, oldest first, at most ``limit``."""
    db = identifier(database)
    where, params = executions_where(f, db)
    rows = await ch.query(
        f"SELECT execution_id FROM {db}.executions_by_time FINAL WHERE {where} "
        "ORDER BY started_at, execution_id LIMIT {limit:UInt32}", {**params, "limit": limit})
    return [r["execution_id"] for r in rows]


async def bulk_record(
    ch: ClickHouse, bulk_id: str, tenant: str, *, database: str
) -> dict[str, Any] | None:
    """The bulk operation as it was journaled, or None."""
    rows = await ch.query(
        f"SELECT payload FROM {identifier(database)}.journal WHERE execution_id = {{id:String}} "
        "AND tenant = {tenant:String} AND action = 'bulk' LIMIT 1",
        {"id": bulk_id, "tenant": tenant})  # fmt: skip
    if not rows:
        return None
    record: dict[str, Any] = orjson.loads(rows[0]["payload"])
    return record


async def verdicts(
    ch: ClickHouse, commands: dict[str, str], tenant: str, *, database: str
) -> dict[str, dict[str, Any]]:
    """By command id (``commands``: command id → execution id), the first projected event
    each caused: its type, message and data."""
    db = identifier(database)
    out: dict[str, dict[str, Any]] = {}
    items = list(commands.items())
    for i in range(0, len(items), _CHUNK):
        chunk = dict(items[i:i + _CHUNK])
        rows = await ch.query(
            f"SELECT cause_id, event_type, message, data FROM {db}.events "
            "WHERE execution_id IN {eids:Array(String)} AND cause_id IN {cids:Array(String)} "
            "AND tenant = {tenant:String} ORDER BY seq LIMIT 1 BY cause_id",
            {"eids": sorted(set(chunk.values())), "cids": list(chunk), "tenant": tenant})
        for r in rows:
            out[r["cause_id"]] = {"event_type": r["event_type"], "message": r["message"],
                                  "data": orjson.loads(r["data"] or "{}")}  # fmt: skip
    return out
