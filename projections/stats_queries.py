"""The SQL behind ``projections.stats``: per key, the executions' figures and the attempts'.

The key (``grp``) is '' for one workflow, the system or the module otherwise. Each
query reads the finished executions of the selection from ``executions_by_time``: the
execution-level figures from its columns, the step-level ones from its attempt arrays
(``a_*``, ARRAY JOIN: one row per attempt that ran), the errors from its failed
attempts' arrays (``f_*``), so no query joins another table.
Parameters are bound, and only fixed fragments from this module are spliced.
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
    "workflow": "''", "system": "ifNull(x_system, '')", "module": "ifNull(x_module, '')",
}  # fmt: skip
_QUANTILES = "quantilesExactInclusive(0.5, 0.95, 0.99)"
# An attempt's rank among its step's attempts in the execution (1: the step's first):
# counting firsts gives the executions a step ran in without a uniqExact over ids.
_NTH = "arrayEnumerateUniq(a_step_id) AS x_nth"


@dataclass(frozen=True)
class Scope:
    """The selection: finished executions matching the filters, and their attempts."""

    db: str
    group: Group
    exec_where: str  # over executions_by_time (finished ones only)
    attempt_where: str  # also over the ARRAY JOINed attempts (a_*)
    params: dict[str, Any]


def scope(f: Filters, db: str, group: Group) -> Scope:
    """``system``, ``module`` and ``step_id`` select executions and also the attempts whose
    figures count; ``status``, ``environment``, ``error_type`` and the window select
    executions only (all their attempts count)."""
    where, params = executions_where(f, db)
    params["finished"] = list(FINISHED)
    where += " AND status IN {finished:Array(String)}"
    attempts = [where]
    for column, value in (("system", f.system), ("module", f.module), ("step_id", f.step_id)):
        if value is not None:  # executions_where bound f_<column> already
            attempts.append(f"x_{column} = {{f_{column}:String}}")
    if group == "system" and f.system is not None:
        where += " AND grp = {f_system:String}"
    if group == "module" and f.module is not None:
        where += " AND grp = {f_module:String}"
    return Scope(db, group, where, " AND ".join(attempts), params)


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
        f"FROM {sc.db}.executions_by_time FINAL {array_join} WHERE {sc.exec_where} "
        f"GROUP BY grp{', bucket' if bucket else ''} ORDER BY grp{', bucket' if bucket else ''}",
        params,
    )


def _attempts(sc: Scope, prefix: str, arrays: tuple[str, ...], *extra: str) -> str:
    """ARRAY JOIN of the attempt arrays a query reads (and its key and filters), each
    element named ``x_<name>`` for ``<prefix><name>``: the arrays keep their own names."""
    needed = {"step_id", *arrays}
    if sc.group != "workflow":
        needed.add(sc.group)
    needed.update(a for a in ("system", "module") if f"x_{a}" in sc.attempt_where)
    return "ARRAY JOIN " + ", ".join([*(f"{prefix}{a} AS x_{a}" for a in sorted(needed)), *extra])


async def step_rows(ch: ClickHouse, sc: Scope) -> list[dict[str, Any]]:
    """Per key and step (``step_id`` None: the key's total), over the attempts that ran:
    the executions the step ran in (its first attempt in each: ``x_nth`` = 1; the total's
    ``runs`` means nothing), attempts, failed attempts, attempt-duration avg, percentiles
    and sum, and queue wait (scheduled → started of the attempts a step executor was
    handed: ``wait_n`` samples, ``wait_avg``, ``wait_p95``). All attempts of a step share
    its system and module, so a filter on those keeps all of a step's attempts in an
    execution or none."""
    arrays = ("status", "duration_ms", "wait_ms")
    return await ch.query(
        f"SELECT {_STEP_KEY[sc.group]} AS grp, x_step_id AS step_id, "
        "countIf(x_nth = 1) AS runs, count() AS attempts, "
        "countIf(x_status = 'failed') AS failed_attempts, avg(x_duration_ms) AS avg_ms, "
        f"{_QUANTILES}(x_duration_ms) AS q, ifNull(sum(x_duration_ms), 0) AS dur_sum, "
        "count(x_wait_ms) AS wait_n, avg(x_wait_ms) AS wait_avg, "
        "quantileExactInclusive(0.95)(x_wait_ms) AS wait_p95 "
        f"FROM {sc.db}.executions_by_time FINAL {_attempts(sc, 'a_', arrays, _NTH)} "
        f"WHERE {sc.attempt_where} GROUP BY GROUPING SETS ((grp, step_id), (grp)) "
        "SETTINGS group_by_use_nulls = 1",
        sc.params,
    )


async def error_rows(ch: ClickHouse, sc: Scope) -> list[dict[str, Any]]:
    """Per key and error type of the failed attempts (``type``, 'Unknown' when none was
    reported): count (``n``), the last one (``last``, its finish) and the latest message
    (``example``); most frequent first. Reads the failed attempts' own arrays (``f_*``)."""
    arrays = ("error_type", "error", "at")
    return await ch.query(
        f"SELECT {_STEP_KEY[sc.group]} AS grp, ifNull(x_error_type, 'Unknown') AS type, "
        "count() AS n, toUnixTimestamp64Milli(max(x_at)) AS last, "
        "argMaxIf(x_error, x_at, x_error IS NOT NULL) AS example "
        f"FROM {sc.db}.executions_by_time FINAL {_attempts(sc, 'f_', arrays)} "
        f"WHERE {sc.attempt_where} AND notEmpty(f_at) "
        "GROUP BY grp, type ORDER BY grp, n DESC, type",
        sc.params,
    )
