"""Rows of ``executions_by_time``: one per execution, keyed by its start, for the reads.

``executions`` is keyed by execution id (the projector's and the detail page's lookups);
search, summaries and statistics ask for a time window instead, and over ``executions``
they read everything. This table holds the same execution in start-time order, without
the wide ``state``, plus what those reads need so that they never join: step counts,
the steps and error types the execution ran into, and every attempt that ran as arrays
(``a_*``, one element per attempt, in step then attempt order).

The key holds ``started_at``, which a late report with an earlier start can move. Rows
of one execution replace each other by ``last_seq`` only under the same key, so when the
start moves the row under the old key is retracted (``is_deleted``; FINAL hides it).

``doc`` holds the execution as a search page shows it (``search_item``), so a page reads
one column instead of eighteen. ``executions_by_status`` holds the same documents keyed by
(status, workflow, start): "the failed runs of workflow X" is a slice of its key there, and
a status change retracts the row under the old status the same way.
"""

from __future__ import annotations

from typing import Any

import orjson

from streams.composite import layout, plan_step_of, split
from streams.state import Attempt, ExecutionState, attempts_of, progress_of
from streams.times import iso_ms

COLUMNS = (
    "tenant", "execution_id", "workflow_id", "plan_id", "mode", "status", "progress",
    "environment", "labels", "systems", "modules", "failed_steps", "error_type", "started_at",
    "finished_at", "duration_ms", "last_seq", "is_deleted", "steps_total", "steps_succeeded",
    "steps_failed", "steps_running", "step_ids", "error_types", "a_step_id", "a_attempt",
    "a_system", "a_module", "a_status", "a_started_at", "a_finished_at", "a_duration_ms",
    "a_error_type", "a_error", "a_wait_ms", "doc",
)  # fmt: skip
BY_STATUS_COLUMNS = (
    "tenant", "status", "workflow_id", "started_at", "execution_id", "last_seq", "is_deleted",
    "doc",
)  # fmt: skip

_ARRAYS = COLUMNS[COLUMNS.index("a_step_id"):COLUMNS.index("doc")]  # fmt: skip


def ran(attempts: list[Attempt]) -> list[Attempt]:
    """Attempts that started: a skipped step never ran, so it has no tracking record."""
    return [a for a in attempts if a.status != "skipped"]


def placement(state: ExecutionState, step_id: str) -> tuple[str | None, str | None]:
    """A step's (system, module): as reported, else as its plan step says."""
    step = state.steps[step_id]
    plan_step = plan_step_of(state.plan, step_id) if state.plan else None
    system = step.system or (plan_step.system if plan_step else None)
    module = step.module or (plan_step.module if plan_step else None)
    return system, module


def stats_key(state: ExecutionState, step_id: str) -> str:
    """The step id statistics group by: a loop's iterations (``get[3]``) count as their
    body step (``get``)."""
    base, i = split(step_id)
    if i is None or state.plan is None or not layout(state.plan).is_loop_member(base):
        return step_id
    return base


def figures(state: ExecutionState) -> dict[str, Any]:
    """What the reads need per execution: systems, modules, step counts, attempt arrays,
    progress."""
    out: dict[str, Any] = {name: [] for name in _ARRAYS}
    systems: set[str] = set()
    modules: set[str] = set()
    error_types: set[str] = set()
    failed_steps = 0
    last_status: dict[str, str] = {}  # of the steps that ran
    loop_steps: set[str] = set()  # body steps of loops, whose iterations ran
    for step_id in sorted(state.steps):
        step = state.steps[step_id]
        every = attempts_of(step)
        if not every:
            continue
        system, module = placement(state, step_id)
        systems.update([system] if system else [])
        modules.update([module] if module else [])
        failed_steps += every[-1].status == "failed"
        attempts = ran(every)
        if attempts:
            last_status[step_id] = attempts[-1].status
        key = stats_key(state, step_id)
        if key != step_id:
            loop_steps.add(key)
        for a in attempts:
            scheduled = step.scheduled_at.get(a.attempt)
            if a.error_type:
                error_types.add(a.error_type)
            for name, value in (
                ("a_step_id", key), ("a_attempt", a.attempt), ("a_system", system),
                ("a_module", module), ("a_status", a.status), ("a_started_at", a.started_at),
                ("a_finished_at", a.finished_at), ("a_duration_ms", a.duration_ms),
                ("a_error_type", a.error_type), ("a_error", a.error),
                ("a_wait_ms", max(a.started_at - scheduled, 0) if scheduled else None),
            ):  # fmt: skip
                out[name].append(value)
    statuses = list(last_status.values())
    out.update(
        systems=sorted(systems), modules=sorted(modules), failed_steps=failed_steps,
        steps_total=len(statuses), steps_succeeded=statuses.count("succeeded"),
        steps_failed=statuses.count("failed"), steps_running=statuses.count("running"),
        step_ids=sorted(last_status.keys() | loop_steps), error_types=sorted(error_types),
        progress=progress_of(state),  # once here: each row of the execution shows it
    )  # fmt: skip
    return out


def duration_of(state: ExecutionState) -> int | None:
    if state.finished_at and state.started_at:
        return max(state.finished_at - state.started_at, 0)
    return None


def _iso(ms: int | None) -> str | None:
    return iso_ms(ms) if ms is not None else None


def search_item(state: ExecutionState, figs: dict[str, Any]) -> dict[str, Any]:
    """The execution as a row of ``GET /executions`` (``figs`` = ``figures(state)``)."""
    return {
        "execution_id": state.execution_id, "workflow_id": state.workflow_id,
        "plan_id": state.plan.id if state.plan else None, "mode": state.mode,
        "status": state.status, "environment": state.environment,
        "progress": round(float(figs["progress"]), 4),
        "started_at": _iso(state.started_at), "finished_at": _iso(state.finished_at),
        "duration_ms": duration_of(state), "error_type": state.error_type,
        "step_counts": {k: figs[f"steps_{k}"] for k in ("total", "succeeded", "failed",
                                                         "running")},
        "systems": figs["systems"], "modules": figs["modules"], "labels": dict(state.labels),
    }  # fmt: skip


def by_status_key(state: ExecutionState) -> tuple[str, str, int]:
    """What places a row in ``executions_by_status``: (status, workflow, start)."""
    return state.status, state.workflow_id or "", state.started_at


def by_status_row(
    state: ExecutionState, doc: str, *, deleted: bool = False, version: int = 0
) -> tuple[Any, ...]:
    """The ``executions_by_status`` row of ``state``; ``deleted`` with ``version`` retracts
    the row written under this state's key (its status changed)."""
    status, workflow_id, started_at = by_status_key(state)
    return (state.tenant, status, workflow_id, started_at, state.execution_id,
            max(state.seq, version), int(deleted), "" if deleted else doc)  # fmt: skip


def by_time_row(
    state: ExecutionState, figs: dict[str, Any], *, deleted: bool = False, version: int = 0,
    doc: str = "",
) -> tuple[Any, ...]:  # fmt: skip
    """The row of ``state`` (``figs`` = ``figures(state)``, ``doc`` its ``search_item`` as
    JSON); ``deleted`` with ``version`` retracts the row written under this state's key."""
    values = {
        "tenant": state.tenant, "execution_id": state.execution_id,
        "workflow_id": state.workflow_id, "plan_id": state.plan.id if state.plan else None,
        "mode": state.mode, "status": state.status, "environment": state.environment,
        "labels": dict(state.labels), "error_type": state.error_type,
        "started_at": state.started_at, "finished_at": state.finished_at,
        "duration_ms": duration_of(state),
        "last_seq": max(state.seq, version), "is_deleted": int(deleted), **figs,
        "doc": "" if deleted else doc,
    }  # fmt: skip
    return tuple(values[name] for name in COLUMNS)


def doc_of(state: ExecutionState, figs: dict[str, Any]) -> str:
    return orjson.dumps(search_item(state, figs)).decode()
