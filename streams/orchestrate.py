"""Orchestrated mode inside decide(): which steps start, what a step's outcome leads to,
and the timers (delays, retry backoff, the execution timeout). Pure: time is the
message's ``received_at`` or a timer's ``due_at``.

Inline steps (``start``, ``end``, ``condition``, ``transform``) run here, in the machine;
a ``delay`` is a timer in state; ``external`` steps wait for reports; every other type is
a task on `runledger.tasks`, dispatched with its config rendered, for a step executor.
"""

from __future__ import annotations

import hashlib
from typing import Any

from streams.builder import Builder
from streams.contracts import StepTask, TaskUpdate, iso_ms, task_id_for
from streams.executors.masking import mask_secrets, mask_url
from streams.plan import PlanStep, RetryPolicy
from streams.state import ExecutionState, StepState, attempts_of, step_statuses
from streams.templates import ExpressionError, context, evaluate, render
from streams.validation import canonical_type

INLINE_TYPES = frozenset({"start", "end", "condition", "transform"})
WAITING_TYPES = frozenset({"external"})
_MAX_TIMER_ROUNDS = 1000


def next_due(state: ExecutionState) -> int | None:
    """The earliest of the execution timeout and every step's delay or retry timer."""
    dues = [s.due_at for s in state.steps.values() if s.due_at is not None]
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
        step = min((s for s in st.steps.values() if s.due_at == due), key=lambda s: s.step_id)
        cause = f"timer:{step.due_kind}:{step.step_id}:{due}"
        if step.due_kind == "delay":
            b.emit("step_succeeded", cause, due, step_id=step.step_id, message="delay elapsed",
                   data={"attempt": len(attempts_of(step)), "output": {},
                         "due_at": iso_ms(due)})  # fmt: skip
        else:
            _dispatch(b, _plan_step(st, step.step_id), cause, due, {"due_at": iso_ms(due)})
        advance(b, cause, due)


def advance(b: Builder, cause_id: str, now: int) -> None:
    """Start every step whose dependencies are done; skip those that depend only on
    skipped steps; then finish the execution when no step can make progress."""
    changed = True
    while changed and b.state is not None and not b.state.finished:
        changed = False
        st = b.state
        assert st.plan is not None
        statuses = step_statuses(st)
        for ps in st.plan.steps:
            if statuses[ps.id] != "pending" or ps.id in st.steps:
                continue
            deps = [statuses.get(d) for d in ps.depends_on]
            if any(d not in ("succeeded", "skipped") for d in deps):
                continue
            if deps and all(d == "skipped" for d in deps):
                b.emit("step_skipped", cause_id, now, step_id=ps.id,
                       message="every step it depends on was skipped",
                       data={"reason": "dependencies_skipped"})
            else:
                _run(b, ps, cause_id, now)
            changed = True
            break  # statuses changed: look again from the top
    _complete_if_done(b, cause_id, now)


def _run(b: Builder, ps: PlanStep, cause_id: str, now: int) -> None:
    kind = canonical_type(ps.type)
    if kind in WAITING_TYPES:
        # Reported by another system; mark it so the scheduler does not look again.
        b.emit("step_scheduled", cause_id, now, step_id=ps.id, message="waiting for a report",
               data={"attempt": 1, "type": kind})
        return
    if kind == "delay":
        seconds = float(ps.config.get("seconds", 0))
        due = now + int(seconds * 1000)
        b.emit("step_started", cause_id, now, step_id=ps.id, message=f"delay {seconds:g} s",
               data={"attempt": 1, "due_at": iso_ms(due)})
        return
    if kind not in INLINE_TYPES:
        _dispatch(b, ps, cause_id, now)
        return
    st = b.state
    assert st is not None
    try:
        output = _inline_output(st, ps, kind)
    except ExpressionError as exc:
        b.emit("step_failed", cause_id, now, step_id=ps.id, message=str(exc),
               data={"attempt": 1, "error": str(exc), "error_type": "ExpressionError",
                     "retryable": False, "duration_ms": 0})  # fmt: skip
        return
    b.emit("step_succeeded", cause_id, now, step_id=ps.id, message=f"{kind} done",
           data={"attempt": 1, "output": output, "duration_ms": 0})
    if kind == "condition":
        taken = "true_path" if output["result"] else "false_path"
        other = "false_path" if output["result"] else "true_path"
        taken_ids = set(ps.config.get(taken) or ())
        for sid in ps.config.get(other) or ():
            if sid not in (b.state.steps if b.state else {}) and sid not in taken_ids:
                b.emit("step_skipped", cause_id, now, step_id=sid,
                       message=f"branch not taken ({ps.id} was {bool(output['result'])})",
                       data={"reason": "branch_not_taken", "condition": ps.id})


def _inline_output(st: ExecutionState, ps: PlanStep, kind: str) -> dict[str, Any]:
    if kind == "condition":
        return {"result": evaluate(str(ps.config["expression"]), _context(st))}
    if kind == "transform":
        mapped = render(dict(ps.config.get("mapping") or {}), _context(st))
        return mapped if isinstance(mapped, dict) else {"value": mapped}
    return {}


def _context(st: ExecutionState) -> dict[str, Any]:
    outputs = {sid: s.output for sid, s in st.steps.items() if s.output is not None}
    return context(st.inputs, outputs, st.execution_id)


def _plan_step(st: ExecutionState, step_id: str) -> PlanStep:
    assert st.plan is not None
    ps = st.plan.step(step_id)
    assert ps is not None
    return ps


def task_for(st: ExecutionState, ps: PlanStep, attempt: int, now: int) -> StepTask:
    """The task for one attempt of ``ps`` (its config rendered against the state)."""
    config = render(dict(ps.config), _context(st))
    return StepTask(
        task_id=task_id_for(st.execution_id, ps.id, attempt), execution_id=st.execution_id,
        tenant=st.tenant, step_id=ps.id, attempt=attempt, type=canonical_type(ps.type),
        system=ps.system, module=ps.module, config=config, timeout=ps.timeout,
        dispatched_at=now,
    )  # fmt: skip


def _dispatch(
    b: Builder, ps: PlanStep, cause_id: str, now: int, extra: dict[str, Any] | None = None
) -> None:
    st = b.state
    assert st is not None
    step = st.steps.get(ps.id)
    attempt = (step.scheduled if step else 0) + 1
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
                 "input": _masked(task.config), **(extra or {})})  # fmt: skip
    b.tasks.append(task)


def _masked(config: dict[str, Any]) -> dict[str, Any]:
    """A task's config as the log shows it: secret headers, keys and URL parts masked."""
    masked: dict[str, Any] = mask_secrets(config)
    if isinstance(masked.get("url"), str):
        masked["url"] = mask_url(masked["url"])
    return masked


def in_flight_tasks(st: ExecutionState, now: int) -> list[StepTask]:
    """Tasks dispatched and not finished (sent again after a restore: same task ids)."""
    if st.finished or st.plan is None or st.mode != "orchestrated":
        return []
    statuses = step_statuses(st)
    out = []
    for ps in st.plan.steps:
        step = st.steps.get(ps.id)
        kind = canonical_type(ps.type)
        if step is None or kind in WAITING_TYPES or kind in INLINE_TYPES or kind == "delay":
            continue
        if statuses[ps.id] in ("scheduled", "running"):
            try:
                out.append(task_for(st, ps, step.scheduled, now))
            except ExpressionError:
                continue
    return out


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
        retry = _will_retry(ps.retry, u)
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


def _will_retry(policy: RetryPolicy | None, u: TaskUpdate) -> bool:
    if policy is None or not u.retryable or u.attempt > policy.max_retries:
        return False
    return not policy.retryable_errors or (u.error_type or "") in policy.retryable_errors


def backoff_ms(policy: RetryPolicy, execution_id: str, step_id: str, attempt: int) -> int:
    """Delay before attempt ``attempt + 1``: exponential (or fixed/linear) from
    ``initial_delay`` to ``max_delay``, with jitter derived from the ids (never random)."""
    if policy.backoff_strategy == "fixed":
        base = policy.initial_delay
    elif policy.backoff_strategy == "linear":
        base = policy.initial_delay * attempt
    else:
        base = policy.initial_delay * 2 ** (attempt - 1)
    digest = hashlib.blake2b(f"{execution_id}/{step_id}/{attempt}".encode(), digest_size=8)
    jitter = 0.8 + 0.4 * int.from_bytes(digest.digest(), "big") / 2**64
    return int(min(base * jitter, policy.max_delay) * 1000)


def active_steps(st: ExecutionState) -> list[str]:
    statuses = step_statuses(st)
    return [sid for sid, s in statuses.items()
            if s in ("scheduled", "running", "retrying", "waiting_input")]  # fmt: skip


def _time_out(b: Builder, due: int) -> None:
    st = b.state
    assert st is not None
    b.emit("execution_completed", f"timer:timeout:{due}", due,
           message="the execution timeout expired",
           data={"status": "failed", "error_type": "Timeout", "due_at": iso_ms(due),
                 "stopped_at_steps": active_steps(st)})  # fmt: skip


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
