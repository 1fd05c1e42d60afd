"""A step executor's word on a task inside decide() (pure): started, succeeded, or failed
— then retried after a backoff when the step's retry policy allows."""

from __future__ import annotations

from streams.builder import Builder
from streams.composite import plan_step_of
from streams.contracts import TaskUpdate, task_id_for
from streams.orchestrate import advance
from streams.state import attempts_of, start_time
from streams.steps import backoff_ms, will_retry
from streams.times import iso_ms


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
    running = bool(attempts) and attempts[-1].status == "running"
    if not running and u.started_at is not None:  # a quick call: no `started` update came
        at = start_time(step, min(u.started_at, u.received_at))  # after the last outcome
        b.emit("step_started", f"{u.task_id}:started", at, step_id=u.step_id,
               message=f"attempt {u.attempt} started", data=base)
        now_state = b.state
        assert now_state is not None
        attempts = attempts_of(now_state.steps[u.step_id])
        running = True
    started = attempts[-1].started_at if running else None
    duration = max(u.received_at - started, 0) if started is not None else 0
    logs = {"logs": list(u.logs)} if u.logs else {}
    if u.phase == "succeeded":
        b.emit("step_succeeded", cause, u.received_at, step_id=u.step_id,
               message=f"attempt {u.attempt} succeeded",
               data={**base, "output": u.output or {}, "duration_ms": duration, **logs})
    else:
        ps = plan_step_of(st.plan, u.step_id)
        assert ps is not None
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
