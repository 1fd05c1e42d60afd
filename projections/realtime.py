"""Realtime figures (``GET /stats/realtime``): what runs now and how fast things move.

Windows end at ``now`` (the wall clock unless given) and use the reported timestamps,
like every statistic. Event counts dedupe on (execution_id, seq) rather than reading
``events`` with FINAL. The projector's lag is not ClickHouse's to know: the API adds it.
"""

from __future__ import annotations

import time
from typing import Any

from projections.clickhouse import ClickHouse, identifier
from projections.filters import Filters, executions_where
from projections.queue_stats import execution_queue_wait
from projections.schema import DEFAULT_DATABASE
from streams.times import iso_ms

ACTIVE = ("pending", "queued", "running", "paused")
MINUTE_MS = 60_000


def _event_scope(f: Filters) -> tuple[str, dict[str, Any]]:
    """The filters that ``events`` rows carry themselves."""
    sql = ["tenant = {f_tenant:String}"]
    params: dict[str, Any] = {"f_tenant": f.tenant}
    for column in ("execution_id", "workflow_id", "system", "module", "step_id"):
        value = getattr(f, column)
        if value is not None:
            sql.append(f"{column} = {{f_{column}:String}}")
            params[f"f_{column}"] = value
    return " AND ".join(sql), params


async def realtime_stats(
    ch: ClickHouse, f: Filters, *, now_ms: int | None = None, database: str = DEFAULT_DATABASE
) -> dict[str, Any]:
    """Active executions by status; executions started per minute over the last hour (60
    buckets, oldest first, the last one the current minute); step events per second over
    the last minute; error rate over the last 5 min = failed step attempts / finished step
    attempts (``step_failed`` / (``step_failed`` + ``step_succeeded``) events; null with
    none). The ``from``/``to`` filters do not apply: each figure has its own window."""
    db = identifier(database)
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    f = f.model_copy(update={"since_ms": None, "until_ms": None})
    where, params = executions_where(f, db)
    params.update(active=list(ACTIVE), now=now)
    active_rows = await ch.query(
        f"SELECT status, count() AS n FROM {db}.executions_by_time FINAL WHERE {where} "
        "AND status IN {active:Array(String)} GROUP BY status",
        params,
    )
    first_minute = (now // MINUTE_MS) * MINUTE_MS - 59 * MINUTE_MS
    params["first"] = first_minute
    minute_rows = await ch.query(
        "SELECT intDiv(toUnixTimestamp64Milli(started_at), 60000) * 60000 AS minute, "
        f"count() AS n FROM {db}.executions_by_time FINAL WHERE {where} "
        "AND started_at >= fromUnixTimestamp64Milli({first:Int64}, 'UTC') "
        "AND started_at <= fromUnixTimestamp64Milli({now:Int64}, 'UTC') GROUP BY minute",
        params,
    )
    started = {int(r["minute"]): int(r["n"]) for r in minute_rows}
    ev_where, ev_params = _event_scope(f)
    ev_params["now"] = now
    ev = (await ch.query(
        "SELECT uniqExactIf((execution_id, seq), startsWith(event_type, 'step_') "
        "AND timestamp > fromUnixTimestamp64Milli({now:Int64} - 60000, 'UTC')) AS step_events, "
        "uniqExactIf((execution_id, seq), event_type = 'step_failed') AS failed, "
        "uniqExactIf((execution_id, seq), event_type IN ('step_failed', 'step_succeeded')) "
        f"AS finished FROM {db}.events WHERE {ev_where} "
        "AND timestamp > fromUnixTimestamp64Milli({now:Int64} - 300000, 'UTC') "
        "AND timestamp <= fromUnixTimestamp64Milli({now:Int64}, 'UTC')",
        ev_params,
    ))[0]  # fmt: skip
    waits = await execution_queue_wait(ch, f, now - 300_000, now + 1, database=database)
    by_status = {r["status"]: int(r["n"]) for r in active_rows}
    finished = int(ev["finished"])
    return {
        "now": iso_ms(now),
        "active_executions": sum(by_status.values()),
        "active_by_status": {s: by_status.get(s, 0) for s in ACTIVE},
        "executions_per_minute": [
            {"at": iso_ms(m), "started": started.get(m, 0)}
            for m in range(first_minute, first_minute + 60 * MINUTE_MS, MINUTE_MS)
        ],
        "step_events_per_second": round(int(ev["step_events"]) / 60, 3),
        "error_rate": round(int(ev["failed"]) / finished, 4) if finished else None,
        "step_attempts_finished_5m": finished,
        "queue": {"queued": by_status.get("queued", 0), "wait_ms": waits},  # last 5 min
    }
