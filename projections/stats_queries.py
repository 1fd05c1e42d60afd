"""The SQL behind ``projections.stats``: per key, the executions' figures and the attempts'.

The key (``grp``) is '' for one workflow, the system or the module otherwise. Both
queries read the finished executions of the selection from ``executions_by_time``: the
execution-level figures from its columns, the step-level ones from its attempt arrays
(``a_*``, ARRAY JOIN: one row per attempt that ran), so no query joins another table.
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


def _attempts(sc: Scope, arrays: tuple[str, ...], *extra: str) -> str:
    """ARRAY JOIN of the attempt arrays a query reads (and its key and filters), each
    element named ``x_<name>`` for ``a_<name>``: the arrays keep their own names."""
    needed = {"step_id", *arrays}
    if sc.group != "workflow":
        needed.add(sc.group)
    needed.update(a for a in ("system", "module") if f"x_{a}" in sc.attempt_where)
    return "ARRAY JOIN " + ", ".join([*(f"a_{a} AS x_{a}" for a in sorted(needed)), *extra])


_ATTEMPT_ARRAYS = ("status", "duration_ms", "wait_ms", "error_type", "error", "finished_at",
                   "started_at")
# grouping(step_id, err), standard bits (1: not in the set's key): 1 per step, 2 per error
# type, 3 the key's total.
_PER_STEP, _PER_ERROR, _TOTAL = 1, 2, 3


async def attempt_rows(
    ch: ClickHouse, sc: Scope
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The attempts' figures, in one pass over the selection (one FINAL, one ARRAY JOIN).

    Steps: per key and step (``step_id`` None: the key's total), the executions the step
    ran in (its first attempt in each: ``x_nth`` = 1; the total's ``runs`` means nothing),
    attempts, failed attempts, attempt-duration avg, percentiles and sum, and queue wait
    (scheduled → started of the attempts a step executor was handed: ``wait_n`` samples,
    ``wait_avg``, ``wait_p95``). All attempts of a step share its system and module, so
    a filter on those keeps all of a step's attempts in an execution or none.
    Errors: per key and error type of the failed attempts (``type``), count (``n``), the
    last one and the latest message, most frequent first."""
    rows = await ch.query(
        f"SELECT {_STEP_KEY[sc.group]} AS grp, x_step_id AS step_id, "
        "if(x_status = 'failed', ifNull(x_error_type, 'Unknown'), NULL) AS err, "
        "grouping(step_id, err) AS g, "
        "countIf(x_nth = 1) AS runs, count() AS attempts, "
        "countIf(x_status = 'failed') AS failed_attempts, avg(x_duration_ms) AS avg_ms, "
        f"{_QUANTILES}(x_duration_ms) AS q, ifNull(sum(x_duration_ms), 0) AS dur_sum, "
        "count(x_wait_ms) AS wait_n, avg(x_wait_ms) AS wait_avg, "
        "quantileExactInclusive(0.95)(x_wait_ms) AS wait_p95, "
        "toUnixTimestamp64Milli(max(coalesce(x_finished_at, x_started_at))) AS last, "
        "argMaxIf(x_error, coalesce(x_finished_at, x_started_at), x_error IS NOT NULL) "
        f"AS example FROM {sc.db}.executions_by_time FINAL "
        f"{_attempts(sc, _ATTEMPT_ARRAYS, _NTH)} WHERE {sc.attempt_where} "
        "GROUP BY GROUPING SETS ((grp, step_id), (grp), (grp, err)) "
        "SETTINGS group_by_use_nulls = 1",
        sc.params,
    )
    steps = [r for r in rows if r["g"] in (_PER_STEP, _TOTAL)]
    errors = [{**r, "type": r["err"], "n": r["attempts"]} for r in rows
              if r["g"] == _PER_ERROR and r["err"] is not None]  # fmt: skip
    errors.sort(key=lambda e: (str(e["grp"]), -int(e["n"]), str(e["type"])))
    return steps, errors
