"""Timers inside decide() (pure): delays, retry backoffs, input timeouts and the
execution timeout are due times in the state; a message (a `wake` from the worker's
scanner, or any other) fires every one due at its ``received_at``, earliest first."""

from __future__ import annotations

from streams.builder import Builder
from streams.fanout import Unit
from streams.orchestrate import advance, dispatch, finish_abandoning, plan_step
from streams.state import ExecutionState, attempts_of
from streams.times import iso_ms

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
            dispatch(b, Unit(plan_step(st, step.step_id), step.step_id), cause, due,
                      {"due_at": iso_ms(due)})  # fmt: skip
        advance(b, cause, due)


def _time_out(b: Builder, due: int) -> None:
    finish_abandoning(b, f"timer:timeout:{due}", due, "the execution timeout expired",
                      "failed", {"error_type": "Timeout", "due_at": iso_ms(due)})
