"""Sub-executions inside decide() (pure).

A ``sub_execution`` step starts a child execution (its own id, events and detail) with
the step's ``plan`` and rendered ``inputs``; the child records ``parent_execution_id``
and ``parent_step_id``, the parent's step its ``child_execution_id``. When the child
finishes, its worker sends the parent a ``ChildFinished`` and the step ends with the
child's outcome; its output is ``{"execution_id", "status", "outputs": {step: output}}``
(every step of the child that succeeded with an output). Stopping the parent stops the
child; pausing or resuming the parent does the same to the child; retrying the step
retries the failed child's failed steps (a stopped child is started afresh, as is every
child of a rerun).

Messages to other executions are idempotent by their ids (a start by ``sub:<child>``, an
outcome by the child's last seq), so sending one again — after a restore, or when the
same message is applied twice — changes nothing.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from pydantic import ValidationError

from streams.builder import Builder
from streams.composite import plan_step_of
from streams.contracts import (
    ChildFinished,
    ControlAction,
    ControlCommand,
    StartExecution,
    StopExecution,
)
from streams.plan import Plan, PlanStep, canonical_type
from streams.state import ExecutionState, attempts_of, reported_status, start_time
from streams.steps import STOPPED, masked_input, template_context
from streams.templates import ExpressionError, render

CHILD_STOPPED = "SubExecutionStopped"
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")


def child_id_for(parent: str, step_id: str, attempt: int) -> str:
    """The child's execution id: readable (``<parent>.<step>.<attempt>``) when the step id
    allows, always within the API's id alphabet and 200 characters."""
    slug = _UNSAFE.sub("_", step_id)
    child = f"{parent}.{slug}.{attempt}"
    if slug != step_id or len(child) > 200:
        digest = hashlib.blake2b(f"{parent}\x1f{step_id}\x1f{attempt}".encode(), digest_size=6)
        child = f"{parent[:150]}.{slug[:30]}.{digest.hexdigest()}"
    return child


def start(b: Builder, ps: PlanStep, sid: str, attempt: int, cause_id: str, now: int) -> None:
    """Start the child of step ``sid`` (or, retrying after the child failed, retry it)."""
    st = b.state
    assert st is not None
    step = st.steps.get(sid)
    again = step is not None and step.child is not None and _child_failed(step)
    child = step.child if again and step is not None and step.child else child_id_for(
        st.execution_id, sid, attempt)  # fmt: skip
    try:
        message = _child_start(st, ps, sid, child, now)
    except (ExpressionError, ValidationError, ValueError) as exc:
        b.fail_step(sid, attempt, str(exc)[:2000], "InvalidConfig", cause_id, now)
        return
    b.emit("step_scheduled", cause_id, now, step_id=sid,
           message=f"child execution {child}" + (" retried" if again else " started"),
           data={"attempt": attempt, "type": "sub_execution", "child_execution_id": child,
                 "input": masked_input(message.inputs)})  # fmt: skip
    b.emit("step_started", cause_id, start_time(st.steps.get(sid), now), step_id=sid,
           message=f"child execution {child}",
           data={"attempt": attempt, "child_execution_id": child})
    if again:
        b.outbound.append(_command(st, child, "retry", f"retry:{child}:{attempt}", now))
    else:
        b.outbound.append(message)


def _child_start(st: ExecutionState, ps: PlanStep, sid: str, child: str, now: int
                 ) -> StartExecution:  # fmt: skip
    if not ps.config.get("plan"):
        raise ValueError("a sub_execution needs a plan: saved workflows (workflow_id) "
                         "are not available in this version")  # fmt: skip
    inputs = render(dict(ps.config.get("inputs") or {}), template_context(st, sid))
    return StartExecution(
        execution_id=child, tenant=st.tenant, received_at=now, command_id=f"sub:{child}",
        actor=f"execution:{st.execution_id}", mode="orchestrated",
        plan=Plan.model_validate(ps.config["plan"]), inputs=inputs,
        environment=st.environment or "dev", labels=st.labels,
        workflow_id=ps.config.get("workflow_id"), parent_execution_id=st.execution_id,
        parent_step_id=sid,
    )  # fmt: skip


def _child_failed(step: Any) -> bool:
    attempts = attempts_of(step)
    return bool(attempts) and attempts[-1].status == "failed" \
        and attempts[-1].error_type not in (STOPPED, CHILD_STOPPED)  # fmt: skip


def _command(st: ExecutionState, child: str, action: ControlAction, command_id: str,
             now: int) -> ControlCommand:  # fmt: skip
    return ControlCommand(execution_id=child, tenant=st.tenant, received_at=now,
                          command_id=command_id, actor=f"execution:{st.execution_id}",
                          action=action)  # fmt: skip


def stop_children(b: Builder, sids: list[str], cause_id: str, now: int, why: str) -> None:
    """Stop the children of the sub_execution steps among ``sids``."""
    st = b.state
    assert st is not None
    for sid in sids:
        step = st.steps.get(sid)
        if step is not None and step.child:
            b.outbound.append(StopExecution(
                execution_id=step.child, tenant=st.tenant, received_at=now,
                command_id=f"{cause_id}:stop:{step.child}", actor=f"execution:{st.execution_id}",
                reason=f"parent {st.execution_id} stopped: {why}"))  # fmt: skip


def steer_children(b: Builder, action: ControlAction, cause_id: str, now: int) -> None:
    """Pause or resume the children of the running sub_execution steps."""
    st = b.state
    assert st is not None
    for step in st.steps.values():
        if step.child and reported_status(step) == "running":
            b.outbound.append(_command(st, step.child, action,
                                       f"{cause_id}:{action}:{step.child}", now))


def on_child(b: Builder, msg: ChildFinished) -> bool:
    """A child's outcome ends its step; False when it changes nothing (stale, repeated)."""
    st = b.state
    cause = f"child:{msg.child_id}:{msg.child_seq}"
    if st is None or st.finished or b.applied(cause):
        return False
    step = st.steps.get(msg.step_id)
    if step is None or step.child != msg.child_id or reported_status(step) != "running":
        return False
    attempts = attempts_of(step)
    data: dict[str, Any] = {"attempt": len(attempts), "child_execution_id": msg.child_id,
                            "duration_ms": max(msg.received_at - attempts[-1].started_at, 0)}
    if msg.status == "succeeded":
        b.emit("step_succeeded", cause, msg.received_at, step_id=msg.step_id,
               message=f"child execution {msg.child_id} succeeded",
               data={**data, "output": msg.output})  # fmt: skip
    else:
        error_type = CHILD_STOPPED if msg.status == "stopped" else (
            msg.error_type or "SubExecutionFailed")  # fmt: skip
        b.emit("step_failed", cause, msg.received_at, step_id=msg.step_id,
               message=f"child execution {msg.child_id} {msg.status}",
               data={**data, "error": msg.message or f"child {msg.status}",
                     "error_type": error_type, "retryable": False})  # fmt: skip
    return True


def notices(
    before: ExecutionState | None, after: ExecutionState | None, resent: bool, now: int
) -> list[ChildFinished]:
    """A child that just finished — or finished and is asked again (its start sent again,
    its state restored) — tells its parent."""
    if after is None or not after.finished or after.parent_execution_id is None:
        return []
    if not resent and before is not None and before.finished:
        return []
    outputs = {sid: s.output for sid, s in after.steps.items()
               if s.output and reported_status(s) == "succeeded"}  # fmt: skip
    return [ChildFinished(
        execution_id=after.parent_execution_id, tenant=after.tenant, received_at=now,
        child_id=after.execution_id, step_id=after.parent_step_id or "",
        child_seq=after.seq, status=after.final_status or "failed", message=after.message,
        error_type=after.error_type,
        output={"execution_id": after.execution_id, "status": after.final_status,
                "outputs": outputs},
    )]  # fmt: skip


def in_flight_children(st: ExecutionState, now: int) -> list[StartExecution]:
    """The starts of the children still running, sent again after a restore (a child
    that exists ignores it; one that finished answers with its outcome)."""
    if st.finished or st.plan is None:
        return []
    out = []
    for sid, step in st.steps.items():
        ps = plan_step_of(st.plan, sid)
        if ps is None or canonical_type(ps.type) != "sub_execution" or not step.child:
            continue
        if reported_status(step) == "running":
            try:
                out.append(_child_start(st, ps, sid, step.child, now))
            except (ExpressionError, ValidationError, ValueError):
                continue
    return out
