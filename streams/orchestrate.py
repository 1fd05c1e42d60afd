"""Orchestrated mode inside decide(): which steps start, what a step's outcome leads to,
and the timers (delays, retry backoff, the execution timeout). Pure: time is the
message's ``received_at`` or a timer's ``due_at``.

Inline steps (``start``, ``end``, ``condition``, ``transform``) run here, in the machine;
a ``delay`` is a timer in state; ``external`` steps wait for reports; every other type is
a task on `runledger.tasks`, dispatched with its config rendered, for a step executor.
"""

from __future__ import annotations

from typing import Any

from streams.builder import Builder
from streams.contracts import TaskUpdate, iso_ms, task_id_for
from streams.plan import PlanStep
from streams.state import ExecutionState, StepState, attempts_of, next_attempt, step_statuses
from streams.steps import (
    INLINE_TYPES,
    STOPPED,
    WAITING_TYPES,
    active_steps,
    backoff_ms,
    inline_output,
    masked_input,
    resolved_input,
    task_for,
    template_context,
    will_retry,
)
from streams.templates import ExpressionError, render
from streams.validation import canonical_type

_MAX_TIMER_ROUNDS = 1000


def next_due(state: ExecutionState) -> int | None:
    """The earliest of the execution timeout and every step's timer (a retry waits while
    the execution is paused: it would start a step)."""
    paused = state.status == "paused"
    dues = [s.due_at for s in state.steps.values()
            if s.due_at is not None and not (paused and s.due_kind == "retry")]  # fmt: skip
    if state.timeout_at is not None:
        dues.append(state.timeout_at)
    return min(dues) if dues else None


def fire_timers(b: Builder, now: int) -> None:
    """Fire every timer due at or before ``now``, earliest first (each may start steps
    whose own timers are due too)."""
    for _ in range(_MAX_TIMER_ROUNDS):
        st = b.state
        if st is None or st.finished:
            return
        due = next_due(st)
        if due is None or due > now:
            return
        if st.timeout_at is not None and st.timeout_at == due:
            _time_out(b, due)
            return
        paused = st.status == "paused"
        step = min((s for s in st.steps.values() if s.due_at == due
                    and not (paused and s.due_kind == "retry")), key=lambda s: s.step_id)
        cause = f"timer:{step.due_kind}:{step.step_id}:{due}"
        if step.due_kind == "delay":
            b.emit("step_succeeded", cause, due, step_id=step.step_id, message="delay elapsed",
                   data={"attempt": len(attempts_of(step)), "output": {},
                         "due_at": iso_ms(due)})  # fmt: skip
        elif step.due_kind == "input":
            b.emit("step_failed", cause, due, step_id=step.step_id,
                   message="no input before the step's timeout",
                   data={"attempt": len(attempts_of(step)), "error": "no input received in time",
                         "error_type": "InputTimeout", "retryable": False,
                         "due_at": iso_ms(due)})  # fmt: skip
        else:
            _dispatch(b, _plan_step(st, step.step_id), cause, due, {"due_at": iso_ms(due)})
        advance(b, cause, due)


def ready_steps(st: ExecutionState) -> list[PlanStep]:
    """Plan steps that would start now: pending, every dependency succeeded or skipped."""
    if st.plan is None:
        return []
    statuses = step_statuses(st)
    return [ps for ps in st.plan.steps if statuses[ps.id] == "pending"
            and all(statuses.get(d) in ("succeeded", "skipped") for d in ps.depends_on)]


def advance(b: Builder, cause_id: str, now: int) -> None:
    """Start every ready step (none while paused; in debug mode the execution pauses
    before each); skip those that depend only on skipped steps; then finish the
    execution when no step can make progress."""
    while b.state is not None and not b.state.finished:
        st = b.state
        ready = ready_steps(st)
        skip = [ps for ps in ready if ps.depends_on and all(
            step_statuses(st).get(d) == "skipped" for d in ps.depends_on)]  # fmt: skip
        if skip:
            b.emit("step_skipped", cause_id, now, step_id=skip[0].id,
                   message="every step it depends on was skipped",
                   data={"reason": "dependencies_skipped"})
            continue
        if not ready or st.status == "paused":
            break
        if st.debug:
            b.emit("execution_paused", cause_id, now, message=f"debug: before {ready[0].id}",
                   data={"reason": "debug", "next_step": ready[0].id, "status": "paused",
                         "next_input": resolved_input(st, ready[0])})  # fmt: skip
            break
        _run(b, ready[0], cause_id, now)
    _complete_if_done(b, cause_id, now)


def run_step(b: Builder, ps: PlanStep, cause_id: str, now: int) -> None:
    """Start one step now, whatever the execution's pause (debug's `step` command)."""
    _run(b, ps, cause_id, now)


def _run(b: Builder, ps: PlanStep, cause_id: str, now: int) -> None:
    kind = canonical_type(ps.type)
    st = b.state
    assert st is not None
    attempt = next_attempt(st.steps.get(ps.id))
    if kind in WAITING_TYPES:
        # Reported by another system; mark it so the scheduler does not look again.
        b.emit("step_scheduled", cause_id, now, step_id=ps.id, message="waiting for a report",
               data={"attempt": attempt, "type": kind})
        return
    if kind == "delay":
        seconds = float(ps.config.get("seconds", 0))
        due = now + int(seconds * 1000)
        b.emit("step_started", cause_id, now, step_id=ps.id, message=f"delay {seconds:g} s",
               data={"attempt": attempt, "due_at": iso_ms(due)})
        return
    if kind == "wait_input":
        _wait_for_input(b, ps, attempt, cause_id, now)
        return
    if kind not in INLINE_TYPES:
        _dispatch(b, ps, cause_id, now)
        return
    try:
        output = inline_output(st, ps, kind)
    except ExpressionError as exc:
        b.emit("step_failed", cause_id, now, step_id=ps.id, message=str(exc),
               data={"attempt": attempt, "error": str(exc), "error_type": "ExpressionError",
                     "retryable": False, "duration_ms": 0})  # fmt: skip
        return
    b.emit("step_succeeded", cause_id, now, step_id=ps.id, message=f"{kind} done",
           data={"attempt": attempt, "output": output, "duration_ms": 0})
    if kind == "condition":
        taken = "true_path" if output["result"] else "false_path"
        other = "false_path" if output["result"] else "true_path"
        taken_ids = set(ps.config.get(taken) or ())
        for sid in ps.config.get(other) or ():
            pending = b.state is not None and step_statuses(b.state).get(sid) == "pending"
            if pending and sid not in taken_ids:
                b.emit("step_skipped", cause_id, now, step_id=sid,
                       message=f"branch not taken ({ps.id} was {bool(output['result'])})",
                       data={"reason": "branch_not_taken", "condition": ps.id})


def _wait_for_input(b: Builder, ps: PlanStep, attempt: int, cause_id: str, now: int) -> None:
    st = b.state
    assert st is not None
    try:
        prompt = render(str(ps.config.get("prompt") or ""), template_context(st))
    except ExpressionError:
        prompt = str(ps.config.get("prompt") or "")
    seconds = ps.config.get("timeout_seconds")
    data: dict[str, Any] = {"attempt": attempt, "prompt": prompt,
                            "input_schema": ps.config.get("input_schema") or {}}
    if seconds:
        data["timeout_at"] = iso_ms(now + int(float(seconds) * 1000))
    b.emit("step_started", cause_id, now, step_id=ps.id, message="waiting for input",
           data={"attempt": attempt})
    b.emit("user_input_required", cause_id, now, step_id=ps.id, message=str(prompt),
           data=data)


def _plan_step(st: ExecutionState, step_id: str) -> PlanStep:
    assert st.plan is not None
    ps = st.plan.step(step_id)
    assert ps is not None
    return ps


def _dispatch(
    b: Builder, ps: PlanStep, cause_id: str, now: int, extra: dict[str, Any] | None = None
) -> None:
    st = b.state
    assert st is not None
    attempt = next_attempt(st.steps.get(ps.id))
    try:
        task = task_for(st, ps, attempt, now)
    except ExpressionError as exc:
        b.emit("step_failed", cause_id, now, step_id=ps.id, message=str(exc),
               data={"attempt": attempt, "error": str(exc), "error_type": "ExpressionError",
                     "retryable": False, "duration_ms": 0})  # fmt: skip
        return
    b.emit("step_scheduled", cause_id, now, step_id=ps.id,
           message=f"{task.type} attempt {attempt} dispatched",
           data={"attempt": attempt, "task_id": task.task_id, "type": task.type,
                 "input": masked_input(task.config), **(extra or {})})  # fmt: skip
    b.tasks.append(task)


def on_task(b: Builder, u: TaskUpdate) -> None:
    """A step executor's word on a task; stale or repeated words change nothing."""
    st = b.state
    cause = f"{u.task_id}:{u.phase}"
    if st is None or st.finished or st.plan is None or b.applied(cause):
        return
    step = st.steps.get(u.step_id)
    if step is None or step.scheduled != u.attempt or u.task_id != task_id_for(
        st.execution_id, u.step_id, u.attempt
    ):
        return
    attempts = attempts_of(step)
    finished = sum(1 for a in attempts if a.status != "running")
    if finished >= u.attempt:
        return  # this attempt already has its outcome
    base = {"attempt": u.attempt, "task_id": u.task_id}
    if u.phase == "started":
        b.emit("step_started", cause, u.received_at, step_id=u.step_id,
               message=f"attempt {u.attempt} started", data=base)
        return
    started = attempts[-1].started_at if attempts and attempts[-1].status == "running" else None
    duration = max(u.received_at - started, 0) if started is not None else 0
    logs = {"logs": list(u.logs)} if u.logs else {}
    if u.phase == "succeeded":
        b.emit("step_succeeded", cause, u.received_at, step_id=u.step_id,
               message=f"attempt {u.attempt} succeeded",
               data={**base, "output": u.output or {}, "duration_ms": duration, **logs})
    else:
        ps = _plan_step(st, u.step_id)
        retry = will_retry(ps.retry, u)
        b.emit("step_failed", cause, u.received_at, step_id=u.step_id,
               message=u.error or f"attempt {u.attempt} failed",
               data={**base, "error": u.error or "", "error_type": u.error_type or "Error",
                     "retryable": retry, "duration_ms": duration, **logs})  # fmt: skip
        if retry:
            assert ps.retry is not None
            delay = backoff_ms(ps.retry, st.execution_id, u.step_id, u.attempt)
            due = u.received_at + delay
            b.emit("step_retry_scheduled", cause, u.received_at, step_id=u.step_id,
                   message=f"attempt {u.attempt + 1} in {delay} ms",
                   data={"attempt": u.attempt + 1, "due_at": iso_ms(due), "delay_ms": delay})
    advance(b, cause, u.received_at)


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
    for sid in active:
        step = st.steps.get(sid)
        if step is None or step.due_kind == "retry":
            continue  # a retry not yet dispatched has no attempt open
        b.emit("step_failed", cause_id, ts, step_id=sid, message=why,
               data={"attempt": max(step.scheduled, len(attempts_of(step))), "error": why,
                     "error_type": STOPPED, "retryable": False, "abandoned": True})  # fmt: skip


def _time_out(b: Builder, due: int) -> None:
    finish_abandoning(b, f"timer:timeout:{due}", due, "the execution timeout expired",
                      "failed", {"error_type": "Timeout", "due_at": iso_ms(due)})


def _complete_if_done(b: Builder, cause_id: str, now: int) -> None:
    st = b.state
    if st is None or st.finished or st.plan is None:
        return
    statuses = step_statuses(st)
    if any(statuses[ps.id] not in ("succeeded", "failed", "skipped", "blocked")
           for ps in st.plan.steps):  # fmt: skip
        return
    failed = [ps.id for ps in st.plan.steps if statuses[ps.id] == "failed"]
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
