"""Execution queue waits (accepted → admitted under limits: streams/admission.py), from the
``execution_dequeued`` events that carry them (``data.queue_wait_ms``); step queue waits
(scheduled → started) are in projections.stats."""

from __future__ import annotations

from typing import Any

from projections.clickhouse import ClickHouse, identifier
from projections.filters import Filters


async def execution_queue_wait(
    ch: ClickHouse, f: Filters, since_ms: int, until_ms: int, *, database: str
) -> dict[str, Any]:
    """Count, average and p50/p95/p99 of the queue waits of the executions admitted in
    [since_ms, until_ms) that match the filters' tenant, workflow, system and module."""
    db = identifier(database)
    where = ["tenant = {tenant:String}", "event_type = 'execution_dequeued'",
             "timestamp >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')",
             "timestamp < fromUnixTimestamp64Milli({until:Int64}, 'UTC')"]  # fmt: skip
    params: dict[str, Any] = {"tenant": f.tenant, "since": since_ms, "until": until_ms}
    for column in ("workflow_id", "execution_id", "system", "module"):
        value = getattr(f, column)
        if value is not None:
            where.append(f"{column} = {{{column}:String}}")
            params[column] = value
    rows = await ch.query(
        "SELECT count() AS n, avg(w) AS avg_ms, quantilesExactInclusive(0.5, 0.95, 0.99)(w) AS q "
        "FROM (SELECT execution_id, any(JSONExtractUInt(data, 'queue_wait_ms')) AS w "
        f"FROM {db}.events WHERE {' AND '.join(where)} GROUP BY execution_id, seq)",
        params,
    )  # (execution_id, seq) once: the archive may hold a re-sent event twice
    r: dict[str, Any] = rows[0] if rows else {"n": 0}
    n = int(r["n"])
    if not n:
        return {"count": 0, "avg_ms": None, "p50_ms": None, "p95_ms": None, "p99_ms": None}
    q = [float(x) for x in r["q"]]
    return {"count": n, "avg_ms": round(float(r["avg_ms"]), 1), "p50_ms": q[0],
            "p95_ms": q[1], "p99_ms": q[2]}
