"""Orchestrated mode inside decide(): which steps start, what a step's outcome leads to,
and the timers (delays, retry backoff, the execution timeout). Pure: time is the
message's ``received_at`` or a timer's ``due_at``.

Inline steps (``start``, ``end``, ``condition``, ``transform``) run here, in the machine;
a ``delay`` is a timer in state; ``external`` steps wait for reports; ``parallel`` and
``loop`` start their members (streams/fanout.py); a ``sub_execution`` starts a child
execution (streams/subexec.py); every other type is a task on `runledger.tasks`,
dispatched with its config rendered, for a step executor.
"""

from __future__ import annotations

from typing import Any

from streams import fanout, subexec
from streams.builder import Builder
from streams.composite import layout, plan_step_of, sibling
from streams.fanout import Unit, deps_of
from streams.plan import PlanStep, canonical_type
from streams.state import (
    ACTIVE_STEP_STATUSES,
    ExecutionState,
    StepState,
    attempts_of,
    next_attempt,
    start_time,
    step_statuses,
)
from streams.steps import (
    INLINE_TYPES,
    STOPPED,
    WAITING_TYPES,
    active_steps,
    inline_output,
    masked_input,
    resolved_input,
    task_for,
    template_context,
)
from streams.templates import ExpressionError, render
from streams.times import iso_ms

_MAX_ADVANCE_ROUNDS = 100_000  # a bug that would loop for ever fails the message instead


def ready_steps(st: ExecutionState) -> list[Unit]:
    """Steps that would start now: pending top-level steps and the members whose turn it
    is in a running parallel or loop, every dependency succeeded or skipped."""
    if st.plan is None:
        return []
    statuses = step_statuses(st)
    owner = layout(st.plan).owner
    units = [Unit(ps, ps.id) for ps in st.plan.steps
             if ps.id not in owner and statuses[ps.id] == "pending"]  # fmt: skip
    units += fanout.member_units(st, statuses)
    return [u for u in units
            if all(statuses.get(d, "pending") in ("succeeded", "skipped") for d in deps_of(u))]


def advance(b: Builder, cause_id: str, now: int) -> None:
    """End the composites their members decided, start every ready step (none while
    paused; in debug mode the execution pauses before each); skip those that depend only
    on skipped steps; then finish the execution when no step can make progress."""
    for _ in range(_MAX_ADVANCE_ROUNDS):
        if b.state is None or b.state.finished:
            break
        st = b.state
        statuses = step_statuses(st)
        if st.plan is not None and fanout.settle(b, statuses, cause_id, now):
            continue
        ready = ready_steps(st)
        skip = [u for u in ready if u.ps.depends_on and all(
            statuses.get(d) == "skipped" for d in deps_of(u))]  # fmt: skip
        if skip:
            b.emit("step_skipped", cause_id, now, step_id=skip[0].sid,
                   message="every step it depends on was skipped",
                   data={"reason": "dependencies_skipped"})
            continue
        if not ready:
            break
        if st.status == "paused":
            # Debug: once the step `step` ran is done, say which one comes next (once).
            if st.debug and st.debug_next is None and not any(
                    s in ACTIVE_STEP_STATUSES for s in statuses.values()):  # fmt: skip
                _debug_pause(b, ready[0], cause_id, now)
            break
        if st.debug:
            _debug_pause(b, ready[0], cause_id, now)
            break
        _run(b, ready[0], cause_id, now)
    else:
        raise RuntimeError(f"the plan did not settle in {_MAX_ADVANCE_ROUNDS} rounds")
    _complete_if_done(b, cause_id, now)


def _debug_pause(b: Builder, unit: Unit, cause_id: str, now: int) -> None:
    assert b.state is not None
    b.emit("execution_paused", cause_id, now, message=f"debug: before {unit.sid}",
           data={"reason": "debug", "next_step": unit.sid, "status": "paused",
                 "next_input": resolved_input(b.state, unit.ps, unit.sid)})


def run_step(b: Builder, unit: Unit, cause_id: str, now: int) -> None:
    """Start one step now, whatever the execution's pause (debug's `step`, retry)."""
    _run(b, unit, cause_id, now)


def _run(b: Builder, unit: Unit, cause_id: str, now: int) -> None:
    ps, sid = unit.ps, unit.sid
    kind = canonical_type(ps.type)
    st = b.state
    assert st is not None
    attempt = next_attempt(st.steps.get(sid))
    if kind in WAITING_TYPES:
        # Reported by another system; mark it so the scheduler does not look again.
        b.emit("step_scheduled", cause_id, now, step_id=sid, message="waiting for a report",
               data={"attempt": attempt, "type": kind})
        return
    if kind == "delay":
        seconds = float(ps.config.get("seconds", 0))
        due = now + int(seconds * 1000)
        b.emit("step_started", cause_id, start_time(st.steps.get(sid), now), step_id=sid,
               message=f"delay {seconds:g} s",
               data={"attempt": attempt, "due_at": iso_ms(due)})
        return
    if kind == "wait_input":
        _wait_for_input(b, unit, attempt, cause_id, now)
        return
    if kind in ("parallel", "loop"):
        _start_composite(b, unit, kind, attempt, cause_id, now)
        return
    if kind == "sub_execution":
        subexec.start(b, ps, sid, attempt, cause_id, now)
        return
    if kind not in INLINE_TYPES:
        dispatch(b, unit, cause_id, now)
        return
    try:
        output = inline_output(st, ps, sid, kind)
    except ExpressionError as exc:
        b.fail_step(sid, attempt, str(exc), "ExpressionError", cause_id, now)
        return
    b.emit("step_succeeded", cause_id, now, step_id=sid, message=f"{kind} done",
           data={"attempt": attempt, "output": output, "duration_ms": 0})
    if kind == "condition":
        taken = "true_path" if output["result"] else "false_path"
        other = "false_path" if output["result"] else "true_path"
        taken_ids = {sibling(sid, t) for t in ps.config.get(taken) or ()}
        for target in (sibling(sid, o) for o in ps.config.get(other) or ()):
            pending = b.state is not None and step_statuses(b.state).get(target,
                                                                         "pending") == "pending"
            if pending and target not in taken_ids:
                b.emit("step_skipped", cause_id, now, step_id=target,
                       message=f"branch not taken ({sid} was {bool(output['result'])})",
                       data={"reason": "branch_not_taken", "condition": sid})


def _start_composite(b: Builder, unit: Unit, kind: str, attempt: int, cause_id: str,
                     now: int) -> None:  # fmt: skip
    st = b.state
    assert st is not None
    data: dict[str, Any] = {"attempt": attempt, "type": kind}
    step = st.steps.get(unit.sid)
    if kind == "loop" and (step is None or step.items is None):
        try:
            items = fanout.loop_items(st, unit.ps, unit.sid)
        except ExpressionError as exc:
            b.fail_step(unit.sid, attempt, str(exc), "ExpressionError", cause_id, now)
            return
        if items is not None:
            data["items"] = items
    b.emit("step_started", cause_id, start_time(step, now), step_id=unit.sid,
           message=f"{kind} started", data=data)


def _wait_for_input(b: Builder, unit: Unit, attempt: int, cause_id: str, now: int) -> None:
    st = b.state
    assert st is not None
    ps = unit.ps
    try:
        prompt = render(str(ps.config.get("prompt") or ""), template_context(st, unit.sid))
    except ExpressionError:
        prompt = str(ps.config.get("prompt") or "")
    seconds = ps.config.get("timeout_seconds")
    data: dict[str, Any] = {"attempt": attempt, "prompt": prompt,
                            "input_schema": ps.config.get("input_schema") or {}}
    if seconds:
        data["timeout_at"] = iso_ms(now + int(float(seconds) * 1000))
    b.emit("step_started", cause_id, start_time(st.steps.get(unit.sid), now), step_id=unit.sid,
           message="waiting for input",
           data={"attempt": attempt})
    b.emit("user_input_required", cause_id, now, step_id=unit.sid, message=str(prompt),
           data=data)


def plan_step(st: ExecutionState, step_id: str) -> PlanStep:
    assert st.plan is not None
    ps = plan_step_of(st.plan, step_id)
    assert ps is not None
    return ps


def dispatch(
    b: Builder, unit: Unit, cause_id: str, now: int, extra: dict[str, Any] | None = None
) -> None:
    st = b.state
    assert st is not None
    attempt = next_attempt(st.steps.get(unit.sid))
    try:
        task = task_for(st, unit.ps, unit.sid, attempt, now)
    except ExpressionError as exc:
        b.fail_step(unit.sid, attempt, str(exc), "ExpressionError", cause_id, now)
        return
    b.emit("step_scheduled", cause_id, now, step_id=unit.sid,
           message=f"{task.type} attempt {attempt} dispatched",
           data={"attempt": attempt, "task_id": task.task_id, "type": task.type,
                 "input": masked_input(task.config), **(extra or {})})  # fmt: skip
    b.tasks.append(task)


def finish_abandoning(
    b: Builder, cause_id: str, ts: int, why: str, status: str, data: dict[str, Any]
) -> None:
    """End the execution (``status``), then close every attempt in flight as failed with
    error_type ``Stopped`` (the step reads as stopped), so its record ends and a later
    retry or rerun starts a fresh attempt. The completion comes first: it is the
    command's verdict."""
    st = b.state
    assert st is not None
    active = active_steps(st)
    b.emit("execution_completed", cause_id, ts, message=why,
           data={"status": status, **data, "stopped_at_steps": active})
    abandon(b, active, cause_id, ts, why)


def abandon(b: Builder, sids: list[str], cause_id: str, ts: int, why: str) -> None:
    """Close the attempts of ``sids`` in flight as failed with error_type ``Stopped`` (the
    step reads as stopped) and stop the children of sub-executions among them."""
    st = b.state
    assert st is not None
    for sid in sids:
        step = st.steps.get(sid)
        if step is None or step.due_kind == "retry":
            continue  # a retry not yet dispatched has no attempt open
        b.emit("step_failed", cause_id, ts, step_id=sid, message=why,
               data={"attempt": max(step.scheduled, len(attempts_of(step))), "error": why,
                     "error_type": STOPPED, "retryable": False, "abandoned": True})  # fmt: skip
    subexec.stop_children(b, sids, cause_id, ts, why)


def _complete_if_done(b: Builder, cause_id: str, now: int) -> None:
    st = b.state
    if st is None or st.finished or st.plan is None:
        return
    statuses = step_statuses(st)
    top = [ps.id for ps in layout(st.plan).top_level(st.plan)]
    if any(statuses[sid] not in ("succeeded", "failed", "skipped", "blocked", "stopped")
           for sid in top):  # fmt: skip
        return
    failed = [sid for sid in top if statuses[sid] == "failed"]
    outcome = "failed" if failed else "succeeded"
    last = _last_error(st, failed)
    b.emit("execution_completed", cause_id, now, message=f"execution {outcome}",
           data={"status": outcome, **({"failed_steps": failed} if failed else {}), **last})


def _last_error(st: ExecutionState, failed: list[str]) -> dict[str, Any]:
    for sid in failed:
        step: StepState = st.steps[sid]
        attempts = attempts_of(step)
        if attempts and attempts[-1].error_type:
            return {"error_type": attempts[-1].error_type}
    return {}
