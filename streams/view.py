"""Read-side shapes computed from a state (pure): the execution detail of DESIGN.md."""

from __future__ import annotations

from typing import Any

from streams.composite import layout, plan_step_of, split
from streams.state import (
    ACTIVE_STEP_STATUSES,
    ExecutionState,
    attempts_of,
    progress_of,
    step_statuses,
)
from streams.times import iso_ms


def _iso(ms: int | None) -> str | None:
    return iso_ms(ms) if ms else None


def ordered_step_ids(state: ExecutionState) -> list[str]:
    """Plan order first (a loop's iterations after the loop, a body step's template not
    shown), then reported-only steps by first start time (stable)."""
    lay = layout(state.plan) if state.plan else None
    ids = [s.id for s in state.plan.steps] if state.plan else []
    known = set(ids)

    def first_seen(sid: str) -> tuple[int, str]:
        attempts = attempts_of(state.steps[sid])
        return (attempts[0].started_at if attempts else 0, sid)

    extra = sorted((sid for sid in state.steps if sid not in known), key=first_seen)
    if lay is None:
        return ids + extra
    iterations: dict[str, list[str]] = {}
    for sid in extra:
        loop = lay.owner.get(split(sid)[0]) if split(sid)[1] is not None else None
        if loop is not None and lay.kinds.get(loop) == "loop":
            iterations.setdefault(loop, []).append(sid)
    order = {sid: n for n, sid in enumerate(ids)}

    def iteration_order(sid: str) -> tuple[int, int]:
        base, i = split(sid)
        return (i or 0, order.get(base, 0))

    out: list[str] = []
    for sid in ids:
        if not lay.is_loop_member(sid):
            out.append(sid)
            out.extend(sorted(iterations.get(sid, ()), key=iteration_order))
    placed = {s for its in iterations.values() for s in its}
    return out + [sid for sid in extra if sid not in placed]


def step_rows(state: ExecutionState) -> list[dict[str, Any]]:
    statuses = step_statuses(state)
    rows = []
    for sid in ordered_step_ids(state):
        step = state.steps.get(sid)
        attempts = attempts_of(step) if step else []
        last = attempts[-1] if attempts else None
        plan_step = plan_step_of(state.plan, sid) if state.plan else None
        rows.append({
            "step_id": sid,
            "status": statuses.get(sid, "pending"),
            "system": (step.system if step else None) or (plan_step.system if plan_step else None),
            "module": (step.module if step else None) or (plan_step.module if plan_step else None),
            "attempts": len(attempts),
            "started_at": _iso(attempts[0].started_at) if attempts else None,
            "finished_at": _iso(last.finished_at) if last else None,
            "duration_ms": last.duration_ms if last else None,
            "error": last.error if last else None,
            "error_type": last.error_type if last else None,
            "output": step.output if step else None,
            **({"child_execution_id": step.child} if step and step.child else {}),
        })  # fmt: skip
    return rows


def describe(state: ExecutionState) -> dict[str, Any]:
    """The `GET /executions/{id}` body."""
    steps = step_rows(state)
    duration = (
        state.finished_at - state.started_at if state.finished_at and state.started_at else None
    )
    return {
        "execution_id": state.execution_id,
        "tenant": state.tenant,
        "workflow_id": state.workflow_id,
        "plan_id": state.plan.id if state.plan else None,
        "mode": state.mode,
        "debug": state.debug,
        "status": state.status,
        "progress": progress_of(state),
        "current_steps": [s["step_id"] for s in steps if s["status"] in ACTIVE_STEP_STATUSES],
        "steps": steps,
        "blocked_steps": [s["step_id"] for s in steps if s["status"] == "blocked"],
        "stopped_at_steps": [s["step_id"] for s in steps if s["status"] == "stopped"],
        "started_at": _iso(state.started_at),
        "finished_at": _iso(state.finished_at),
        "duration_ms": max(duration, 0) if duration is not None else None,
        "message": state.message,
        "error_type": state.error_type,
        "environment": state.environment,
        "labels": state.labels,
        "parent_execution_id": state.parent_execution_id,
        "child_executions": [s.child for s in state.steps.values() if s.child],
        "last_seq": state.seq,
    }
