"""Execution queue waits (accepted → admitted under limits: streams/admission.py), from the
``execution_dequeued`` events that carry them (``data.queue_wait_ms``, and the systems and
modules of the execution's plan in ``data.systems`` / ``data.modules``); step queue waits
(scheduled → started) are in projections.stats."""

from __future__ import annotations

from typing import Any, Literal

from projections.clickhouse import ClickHouse, identifier
from projections.filters import Filters

EMPTY = {"count": 0, "avg_ms": None, "p50_ms": None, "p95_ms": None, "p99_ms": None}


async def execution_queue_wait(
    ch: ClickHouse, f: Filters, since_ms: int, until_ms: int, *, database: str
) -> dict[str, Any]:
    """Count, average and p50/p95/p99 of the queue waits of the executions admitted in
    [since_ms, until_ms) that match the filters' tenant, workflow and execution."""
    rows = await _waits(ch, f, since_ms, until_ms, None, database)
    return rows.get("", dict(EMPTY))


async def queue_wait_by(
    ch: ClickHouse, group: Literal["system", "module"], f: Filters, since_ms: int,
    until_ms: int, *, database: str,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """The same figures per system (module) the executions' plans name."""
    return await _waits(ch, f, since_ms, until_ms, group, database)


async def _waits(
    ch: ClickHouse, f: Filters, since_ms: int, until_ms: int,
    group: Literal["system", "module"] | None, database: str,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    db = identifier(database)
    where = ["tenant = {tenant:String}", "event_type = 'execution_dequeued'",
             "timestamp >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')",
             "timestamp < fromUnixTimestamp64Milli({until:Int64}, 'UTC')"]  # fmt: skip
    params: dict[str, Any] = {"tenant": f.tenant, "since": since_ms, "until": until_ms}
    for column in ("workflow_id", "execution_id"):
        value = getattr(f, column)
        if value is not None:
            where.append(f"{column} = {{{column}:String}}")
            params[column] = value
    key, join = "''", ""
    if group is not None:
        key, join = "grp", f"ARRAY JOIN JSONExtract(d, '{group}s', 'Array(String)') AS grp"
        value = getattr(f, group)
        if value is not None:
            params["grp"] = value
    having = " WHERE grp = {grp:String}" if "grp" in params else ""
    rows = await ch.query(
        f"SELECT {key} AS k, count() AS n, avg(w) AS avg_ms, "
        "quantilesExactInclusive(0.5, 0.95, 0.99)(w) AS q FROM ("
        "SELECT execution_id, any(JSONExtractUInt(data, 'queue_wait_ms')) AS w, any(data) AS d "
        f"FROM {db}.events WHERE {' AND '.join(where)} GROUP BY execution_id, seq) "
        f"{join}{having} GROUP BY k",
        params,
    )  # (execution_id, seq) once: the archive may hold a re-sent event twice
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        q = [float(x) for x in r["q"]]
        out[str(r["k"])] = {"count": int(r["n"]), "avg_ms": round(float(r["avg_ms"]), 1),
                            "p50_ms": q[0], "p95_ms": q[1], "p99_ms": q[2]}  # fmt: skip
    return out
