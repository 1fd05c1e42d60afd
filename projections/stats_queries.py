"""The SQL behind ``projections.stats``: one query per figure family, grouped by a key.

The key (``grp``) is '' for one workflow, the system or the module otherwise. Every
query reads the finished executions of the selection (``Scope.ids``) and what belongs
to them; parameters are bound, and only fixed fragments from this module are spliced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from projections.clickhouse import ClickHouse
from projections.filters import Filters, executions_where

Group = Literal["workflow", "system", "module"]
FINISHED = ("succeeded", "failed", "stopped")
# Executions carry the systems/modules their steps touched as arrays.
_EXEC_KEY: dict[Group, tuple[str, str]] = {
    "workflow": ("'' AS grp", ""),
    "system": ("grp", "ARRAY JOIN systems AS grp"),
    "module": ("grp", "ARRAY JOIN modules AS grp"),
}
_STEP_KEY: dict[Group, str] = {
    "workflow": "''", "system": "ifNull(system, '')", "module": "ifNull(module, '')",
}  # fmt: skip
_QUANTILES = "quantilesExactInclusive(0.5, 0.95, 0.99)"


@dataclass(frozen=True)
class Scope:
    """The selection: finished executions matching the filters, and their steps."""

    db: str
    group: Group
    exec_where: str  # over executions (finished ones only)
    step_where: str  # over step_records and events: their execution in the selection
    params: dict[str, Any]


def scope(f: Filters, db: str, group: Group) -> Scope:
    """``system``, ``module`` and ``step_id`` select executions and also the steps whose
    figures count; ``status``, ``environment``, ``error_type`` and the window select
    executions only (all their steps count)."""
    where, params = executions_where(f, db)
    params["finished"] = list(FINISHED)
    where += " AND status IN {finished:Array(String)}"
    steps = ["tenant = {f_tenant:String}",
             f"execution_id IN (SELECT execution_id FROM {db}.executions FINAL WHERE {where})"]
    for column, value in (("system", f.system), ("module", f.module), ("step_id", f.step_id)):
        if value is not None:  # executions_where bound f_<column> already
            steps.append(f"{column} = {{f_{column}:String}}")
    if group == "system" and f.system is not None:
        where += " AND grp = {f_system:String}"
    if group == "module" and f.module is not None:
        where += " AND grp = {f_module:String}"
    return Scope(db, group, where, " AND ".join(steps), params)


async def execution_rows(
    ch: ClickHouse, sc: Scope, bucket_ms: int | None = None
) -> list[dict[str, Any]]:
    """Per key (and per time bucket of the start, when ``bucket_ms``): runs by status,
    execution-duration avg and p50/p95/p99, and the sum of durations."""
    key, array_join = _EXEC_KEY[sc.group]
    params = dict(sc.params)
    bucket = ""
    if bucket_ms is not None:
        bucket = (", intDiv(toUnixTimestamp64Milli(started_at), {bucket_ms:UInt64}) "
                  "* {bucket_ms:UInt64} AS bucket")  # fmt: skip
        params["bucket_ms"] = bucket_ms
    return await ch.query(
        f"SELECT {key}{bucket}, count() AS runs, countIf(status = 'succeeded') AS succeeded, "
        "countIf(status = 'failed') AS failed, countIf(status = 'stopped') AS stopped, "
        f"avg(duration_ms) AS avg_ms, {_QUANTILES}(duration_ms) AS q, "
        "ifNull(sum(duration_ms), 0) AS dur_sum "
        f"FROM {sc.db}.executions FINAL {array_join} WHERE {sc.exec_where} "
        f"GROUP BY grp{', bucket' if bucket else ''} ORDER BY grp{', bucket' if bucket else ''}",
        params,
    )


async def step_rows(ch: ClickHouse, sc: Scope) -> list[dict[str, Any]]:
    """Per key and step (``step_id`` NULL: the whole key): executions the step ran in,
    attempts, failed attempts, attempt-duration avg and percentiles, duration sum."""
    return await ch.query(
        f"SELECT {_STEP_KEY[sc.group]} AS grp, step_id, uniqExact(execution_id) AS runs, "
        "count() AS attempts, countIf(status = 'failed') AS failed_attempts, "
        f"avg(duration_ms) AS avg_ms, {_QUANTILES}(duration_ms) AS q, "
        "ifNull(sum(duration_ms), 0) AS dur_sum "
        f"FROM {sc.db}.step_records FINAL WHERE {sc.step_where} "
        "GROUP BY GROUPING SETS ((grp, step_id), (grp)) SETTINGS group_by_use_nulls = 1",
        sc.params,
    )


async def error_rows(ch: ClickHouse, sc: Scope) -> list[dict[str, Any]]:
    """Per key and error type of the failed attempts: count, last one, latest message."""
    return await ch.query(
        f"SELECT {_STEP_KEY[sc.group]} AS grp, ifNull(error_type, 'Unknown') AS type, "
        "count() AS n, toUnixTimestamp64Milli(max(coalesce(finished_at, started_at))) AS last, "
        "argMaxIf(error, coalesce(finished_at, started_at), error IS NOT NULL) AS example "
        f"FROM {sc.db}.step_records FINAL WHERE {sc.step_where} AND status = 'failed' "
        "GROUP BY grp, type ORDER BY grp, n DESC, type",
        sc.params,
    )


async def queue_wait_rows(ch: ClickHouse, sc: Scope) -> list[dict[str, Any]]:
    """Scheduled → started per step attempt, from the events: an orchestrated attempt has
    a ``step_scheduled`` and a ``step_started`` carrying the same ``data.attempt``. Reported
    (tracked) starts carry no attempt, so tracked data yields no samples."""
    return await ch.query(
        "SELECT grp, sid AS step_id, count() AS samples, avg(wait) AS avg_ms, "
        "quantileExactInclusive(0.95)(wait) AS p95 FROM ("
        "SELECT execution_id, assumeNotNull(step_id) AS sid, "
        "JSONExtractUInt(data, 'attempt') AS attempt, "
        f"any({_STEP_KEY[sc.group]}) AS grp, "
        "minIf(timestamp, event_type = 'step_scheduled') AS scheduled, "
        "minIf(timestamp, event_type = 'step_started') AS began, "
        "countIf(event_type = 'step_scheduled') AS s, countIf(event_type = 'step_started') AS b, "
        "greatest(dateDiff('millisecond', scheduled, began), 0) AS wait "
        f"FROM {sc.db}.events WHERE {sc.step_where} AND step_id IS NOT NULL "
        "AND event_type IN ('step_scheduled', 'step_started') "
        "GROUP BY execution_id, sid, attempt HAVING attempt > 0 AND s > 0 AND b > 0) "
        "GROUP BY GROUPING SETS ((grp, sid), (grp)) SETTINGS group_by_use_nulls = 1",
        sc.params,
    )
