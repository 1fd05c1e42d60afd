"""Workflow, system and module statistics (DESIGN "Definitions for statistics").

Over the *finished* executions (succeeded, failed, stopped) started in the window
(``from``/``to``; default the last 24 h, none when an ``execution_id`` is given) that
match the filters:

- ``runs``, ``succeeded``/``failed``/``stopped``; ``success_rate`` = succeeded / runs
  (null when there are no runs).
- ``duration_ms``: execution durations (first event → finishing event), avg and
  p50/p95/p99 by ``quantilesExactInclusive`` (exact, linearly interpolated between
  ranks like numpy's default).
- ``slowest_steps``: per step id, its attempts' p95 and avg duration and ``runs`` = the
  executions it ran in; top 10 by p95. A loop's iterations (``get[0]``, ``get[1]``, …)
  count as their body step (``get``) here, in bottlenecks and in search by ``step_id``.
- ``bottlenecks``: per step id, the sum of its attempts' durations over the sum of the
  executions' durations (parallel steps may add up to more than 1); top 10.
- ``queue_wait``: scheduled → started per step attempt that a step executor was handed
  (orchestrated; ``StepState.scheduled_at``); empty for tracked data.
- ``errors``: per ``error_type`` of the failed step attempts (every failed attempt, also
  one later retried successfully): count, share of the failed attempts, last occurrence
  (its finish), the latest message as an example.
- ``series`` with ``interval``: per bucket of the execution's start (UTC), runs,
  success rate and average duration; only buckets with runs.

Systems and modules: the same figures per system / per module. An execution counts in
the runs of every system (module) its steps touched; ``duration_ms`` there is still the
executions' duration, and ``step_duration_ms`` that of the attempts in the system
(module); ``time_share`` is the group's attempt time over its executions' time; steps,
bottlenecks, queue wait and errors are those of the group's own steps.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from projections.clickhouse import ClickHouse, identifier
from projections.filters import Filters
from projections.queue_stats import EMPTY, execution_queue_wait, queue_wait_by
from projections.schema import DEFAULT_DATABASE
from projections.stats_queries import Group, error_rows, execution_rows, scope, step_rows
from projections.tracking import _iso, _number, default_window

Interval = Literal["minute", "hour", "day"]
INTERVAL_MS: dict[str, int] = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000}
TOP = 10


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _durations(row: dict[str, Any] | None) -> dict[str, float | None]:
    if row is None:
        return {"avg": None, "p50": None, "p95": None, "p99": None}
    q = list(row["q"]) or [None, None, None]
    return {"avg": _number(row["avg_ms"]), "p50": _number(q[0]), "p95": _number(q[1]),
            "p99": _number(q[2])}  # fmt: skip


def _by_key(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(str(r["grp"]), []).append(r)
    return out


def _figures(
    runs_row: dict[str, Any] | None, steps: list[dict[str, Any]], errors: list[dict[str, Any]],
    series: list[dict[str, Any]] | None,
) -> dict[str, Any]:  # fmt: skip
    runs = int(runs_row["runs"]) if runs_row else 0
    succeeded = int(runs_row["succeeded"]) if runs_row else 0
    exec_time = int(runs_row["dur_sum"]) if runs_row else 0
    per_step = [s for s in steps if s["step_id"] is not None]
    slowest = sorted(per_step, key=lambda s: (-(_durations(s)["p95"] or 0), s["step_id"]))
    heavy = sorted(per_step, key=lambda s: (-int(s["dur_sum"]), s["step_id"]))
    failed_attempts = sum(int(e["n"]) for e in errors)
    total = next((s for s in steps if s["step_id"] is None), None)
    waits = [s for s in per_step if int(s["wait_n"])]
    return {
        "runs": runs, "succeeded": succeeded,
        "failed": int(runs_row["failed"]) if runs_row else 0,
        "stopped": int(runs_row["stopped"]) if runs_row else 0,
        "success_rate": _ratio(succeeded, runs),
        "duration_ms": _durations(runs_row),
        "slowest_steps": [
            {"step_id": s["step_id"], "p95_ms": _durations(s)["p95"],
             "avg_ms": _number(s["avg_ms"]), "runs": int(s["runs"])}
            for s in slowest[:TOP]
        ],
        "bottlenecks": [{"step_id": s["step_id"], "share": _ratio(int(s["dur_sum"]), exec_time)}
                        for s in heavy[:TOP] if exec_time],
        "queue_wait": {
            "avg_ms": _number(total["wait_avg"]) if total else None,
            "p95_ms": _number(total["wait_p95"]) if total else None,
            "samples": int(total["wait_n"]) if total else 0,
            "steps": [{"step_id": w["step_id"], "avg_ms": _number(w["wait_avg"]),
                       "p95_ms": _number(w["wait_p95"]), "samples": int(w["wait_n"])}
                      for w in sorted(waits, key=lambda w: (-(_number(w["wait_p95"]) or 0),
                                                            str(w["step_id"])))],
        },  # longest waits first
        "errors": [
            {"error_type": e["type"], "count": int(e["n"]),
             "share": _ratio(int(e["n"]), failed_attempts),
             "last_occurrence": _iso(e["last"]),
             "example": e["example"]}
            for e in errors
        ],
        "series": None if series is None else [
            {"at": _iso(b["bucket"]), "runs": int(b["runs"]), "succeeded": int(b["succeeded"]),
             "failed": int(b["failed"]), "stopped": int(b["stopped"]),
             "success_rate": _ratio(int(b["succeeded"]), int(b["runs"])),
             "avg_duration_ms": _number(b["avg_ms"])}
            for b in series
        ],
    }  # fmt: skip


async def _grouped(
    ch: ClickHouse, f: Filters, group: Group, interval: Interval | None, database: str
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], dict[str, int]]:
    """Figures per key, the key's own step row (attempts of all its steps), and the sum
    of its executions' durations."""
    sc = scope(f, identifier(database), group)
    series = [execution_rows(ch, sc, INTERVAL_MS[interval])] if interval else []
    run_rows, step_list, error_list, *bucket_rows = await asyncio.gather(
        execution_rows(ch, sc), step_rows(ch, sc), error_rows(ch, sc), *series
    )  # the statements run side by side on the reader threads
    runs = {str(r["grp"]): r for r in run_rows}
    steps, errors = _by_key(step_list), _by_key(error_list)
    buckets = _by_key(bucket_rows[0]) if bucket_rows else {}
    keys = sorted(set(runs) | set(steps), key=lambda k: (-int(runs[k]["runs"]) if k in runs
                                                          else 0, k))  # fmt: skip
    out = {
        k: _figures(runs.get(k), steps.get(k, []), errors.get(k, []),
                    buckets.get(k, []) if interval else None)
        for k in keys
    }  # fmt: skip
    totals = {k: next((s for s in rows if s["step_id"] is None), {}) for k, rows in steps.items()}
    exec_time = {k: int(r["dur_sum"]) for k, r in runs.items()}
    return out, totals, exec_time


async def workflow_stats(
    ch: ClickHouse, workflow_id: str, f: Filters, *, interval: Interval | None = None,
    now_ms: int | None = None, database: str = DEFAULT_DATABASE,
) -> dict[str, Any]:  # fmt: skip
    """The figures of one workflow (DESIGN "Workflow statistics" shape, plus queue wait,
    series and the window)."""
    f = f.model_copy(update={"workflow_id": workflow_id})
    return {"workflow_id": workflow_id, **await execution_stats(
        ch, f, interval=interval, now_ms=now_ms, database=database)}


async def execution_stats(
    ch: ClickHouse, f: Filters, *, interval: Interval | None = None,
    now_ms: int | None = None, database: str = DEFAULT_DATABASE,
) -> dict[str, Any]:  # fmt: skip
    """The workflow statistics shape over every finished execution ``f`` selects, whatever
    its workflow (all of them as one group)."""
    f = default_window(f, now_ms)
    (out, _, _), waits = await asyncio.gather(
        _grouped(ch, f, "workflow", interval, database),
        execution_queue_wait(ch, f, f.since_ms or 0, f.until_ms or 0, database=database))
    empty = _figures(None, [], [], [] if interval else None)
    return {**out.get("", empty), "execution_queue_wait": waits,
            "from": _iso(f.since_ms), "to": _iso(f.until_ms), "interval": interval}  # fmt: skip


async def group_stats(
    ch: ClickHouse, group: Literal["system", "module"], f: Filters, *,
    interval: Interval | None = None, now_ms: int | None = None,
    database: str = DEFAULT_DATABASE,
) -> dict[str, Any]:  # fmt: skip
    """The figures per system or per module: ``{"items": [...], "next_cursor": null}``,
    most runs first; ``from``/``to``/``interval`` beside them."""
    f = default_window(f, now_ms)
    (out, totals, exec_time), waits = await asyncio.gather(
        _grouped(ch, f, group, interval, database),
        queue_wait_by(ch, group, f, f.since_ms or 0, f.until_ms or 0, database=database))
    items = []
    for key, figures in out.items():
        if not key:
            continue  # steps reported without a system (module)
        total = totals.get(key, {})
        items.append({
            group: key, **figures,
            "attempts": int(total.get("attempts", 0)),
            "failed_attempts": int(total.get("failed_attempts", 0)),
            "step_duration_ms": _durations(total or None),
            "time_share": _ratio(int(total.get("dur_sum", 0)), exec_time.get(key, 0)),
            "execution_queue_wait": waits.get(key, dict(EMPTY)),
        })  # fmt: skip
    return {"items": items, "next_cursor": None, "from": _iso(f.since_ms),
            "to": _iso(f.until_ms), "interval": interval}  # fmt: skip
