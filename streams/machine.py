"""The pure state machine: ``decide(state, message)`` (and the fold, ``evolve``).

No I/O, no clock, no randomness: time comes in as the message's ``received_at``, ids
are derived from ``(execution_id, seq)``. A new state is always the fold of the events
decide() emitted, so a projector folding the archived events reaches the same state.
Tracked mode is handled here; orchestrated scheduling lives in ``streams.orchestrate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams import control, orchestrate, queueing, steps, subexec, task_updates, timers
from streams.builder import Builder, Outbound
from streams.contracts import (
    STEP_REPORT_TYPES,
    Admit,
    ChildFinished,
    ControlCommand,
    Event,
    FinishExecution,
    Rehydrate,
    Report,
    ReportBatch,
    StartExecution,
    StepTask,
    StopExecution,
    TaskUpdate,
    Wake,
)
from streams.fold import evolve
from streams.state import ExecutionState, attempts_of, plan_outcome
from streams.times import iso_ms

__all__ = ["Decision", "MachineConfig", "Message", "decide", "evolve", "next_due_at"]


@dataclass(frozen=True)
class MachineConfig:
    """Settings the machine needs; passed in so decide() stays a pure function."""

    tracked_idle_timeout_ms: int = 86_400_000


@dataclass(frozen=True)
class Decision:
    state: ExecutionState | None
    events: tuple[Event, ...] = ()
    tasks: tuple[StepTask, ...] = ()
    messages: tuple[Outbound, ...] = ()  # to other executions (sub-executions)


Message = (
    StartExecution | FinishExecution | StopExecution | ControlCommand | ReportBatch | TaskUpdate
    | ChildFinished | Wake | Rehydrate | Admit
)


def decide(state: ExecutionState | None, msg: Message, cfg: MachineConfig) -> Decision:
    """Apply one message: fire due timers at ``msg.received_at``, then the message."""
    if isinstance(msg, Rehydrate):
        archived = ExecutionState.model_validate(msg.state)
        now = msg.received_at
        if state is not None and state.seq >= archived.seq:
            return Decision(state, messages=tuple(subexec.notices(state, state, True, now)))
        # The broker may have lost the tasks in flight and the messages to children or to
        # the parent: send them again (same ids, so a repeat changes nothing).
        return Decision(archived, tasks=tuple(steps.in_flight_tasks(archived, now)),
                        messages=(*subexec.in_flight_children(archived, now),
                                  *subexec.notices(archived, archived, True, now)))
    b = Builder(state, msg.execution_id, msg.tenant, msg.received_at)
    _fire_timers(b, msg.received_at, cfg)
    if isinstance(msg, StartExecution):
        _start(b, msg)
    elif isinstance(msg, FinishExecution):
        _finish(b, msg)
    elif isinstance(msg, StopExecution):
        _stop(b, msg)
    elif isinstance(msg, ControlCommand):
        control.apply(b, msg)
    elif isinstance(msg, TaskUpdate):
        task_updates.on_task(b, msg)
    elif isinstance(msg, ChildFinished):
        if subexec.on_child(b, msg):
            orchestrate.advance(b, f"child:{msg.child_id}:{msg.child_seq}", msg.received_at)
    elif isinstance(msg, ReportBatch):
        for report in msg.reports:
            _report(b, report)
    elif isinstance(msg, Admit):
        queueing.on_admit(b, msg)
    resent = isinstance(msg, StartExecution) and msg.parent_execution_id is not None
    b.outbound += subexec.notices(state, b.state, resent, msg.received_at)
    b.outbound += queueing.notices(state, b.state, msg.received_at)
    return Decision(b.state, tuple(b.events), tuple(b.tasks), tuple(b.outbound))


def next_due_at(state: ExecutionState, cfg: MachineConfig) -> int | None:
    """When this execution's earliest timer fires (epoch ms), or None."""
    if state.finished:
        return None
    if state.mode == "orchestrated":
        return timers.next_due(state)
    return state.last_activity_at + cfg.tracked_idle_timeout_ms


def _fire_timers(b: Builder, now: int, cfg: MachineConfig) -> None:
    st = b.state
    if st is None or st.finished:
        return
    if st.mode == "orchestrated":
        timers.fire_timers(b, now)
        return
    due = next_due_at(st, cfg)
    if due is not None and due <= now:
        b.emit("execution_completed", f"timer:idle:{due}", due,
               message="no report within the tracked idle timeout",
               data={"status": "failed", "error_type": "Abandoned", "due_at": iso_ms(due)})


def _start(b: Builder, msg: StartExecution) -> None:
    if b.applied(msg.command_id):
        return
    definition: dict[str, Any] = {
        "mode": msg.mode, "plan": msg.plan.model_dump(by_alias=True) if msg.plan else None,
        "inputs": msg.inputs, "environment": msg.environment, "workflow_id": msg.workflow_id,
        "system": msg.system, "module": msg.module, "labels": msg.labels, "defined": True,
        "actor": msg.actor,
    }  # fmt: skip
    if msg.parent_execution_id is not None:
        definition.update(parent_execution_id=msg.parent_execution_id,
                          parent_step_id=msg.parent_step_id)
    queued = queueing.wants_queue(msg)
    if msg.timeout_sec is not None and not queued:  # a queued one's counts once it runs
        definition["timeout_at"] = msg.received_at + int(msg.timeout_sec * 1000)
    if msg.debug:
        definition["debug"] = True
    if b.state is None:
        b.emit("execution_started", msg.command_id, msg.received_at, message="execution started",
               data=definition, workflow_id=msg.workflow_id, system=msg.system, module=msg.module)
        if queued:
            queueing.enqueue(b, msg)
        elif msg.mode == "orchestrated" and msg.plan is not None:
            orchestrate.advance(b, msg.command_id, msg.received_at)
    elif not b.state.defined and not b.state.finished and msg.mode == "tracked":
        b.emit("execution_updated", msg.command_id, msg.received_at,
               message="definition attached by a start command", data=definition,
               workflow_id=msg.workflow_id)
        _complete_if_plan_done(b, msg.command_id)
    # else: the same execution started again: idempotent, nothing new.


def _reject(b: Builder, command: str, command_id: str, reason: str, message: str) -> None:
    st = b.state
    assert st is not None
    b.emit("command_rejected", command_id, b.received_at, message=message,
           data={"command": command, "reason": reason, "status": st.status})


def _finish(b: Builder, msg: FinishExecution) -> None:
    st = b.state
    if st is None or b.applied(msg.command_id):
        return
    if st.finished:
        _reject(b, "finish", msg.command_id, "already_finished", f"execution already {st.status}")
    elif st.mode != "tracked":
        _reject(b, "finish", msg.command_id, "not_tracked",
                "finish applies to tracked executions; use stop")
    else:
        b.emit("execution_completed", msg.command_id, msg.received_at,
               message=msg.message or f"finished by hand as {msg.status}",
               data={"status": msg.status, "by": msg.actor})


def _stop(b: Builder, msg: StopExecution) -> None:
    st = b.state
    if st is None or b.applied(msg.command_id):
        return
    if st.finished:
        _reject(b, "stop", msg.command_id, "already_finished", f"execution already {st.status}")
        return
    why = msg.reason or f"stopped by {msg.actor}"
    if st.mode == "orchestrated":
        orchestrate.finish_abandoning(b, msg.command_id, msg.received_at, why, "stopped",
                                      {"by": msg.actor})
    else:  # reported steps: nothing is made up for them
        b.emit("execution_completed", msg.command_id, msg.received_at, message=why,
               data={"status": "stopped", "by": msg.actor,
                     "stopped_at_steps": steps.active_steps(st)})  # fmt: skip


def _report(b: Builder, r: Report) -> None:
    if b.applied(r.report_id):
        return
    data = {**r.data, "report_id": r.report_id}
    meta = {"system": r.system, "module": r.module, "workflow_id": r.workflow_id}
    if b.state is None:
        b.emit("execution_started", r.report_id, r.timestamp,
               message=r.message if r.event_type == "execution_started" else "execution started",
               data={"mode": "tracked", "labels": r.labels, "workflow_id": r.workflow_id,
                     "system": r.system, "module": r.module, "report_id": r.report_id},
               **meta)
        if r.event_type == "execution_started":
            return
    elif r.event_type == "execution_started":
        return  # it already exists: nothing to add
    st = b.state
    assert st is not None
    if st.finished and st.mode == "orchestrated":
        return  # a late report for a finished orchestrated run changes nothing
    if r.event_type == "execution_completed":
        if not st.finished:
            status = data.get("status") or "succeeded"
            b.emit("execution_completed", r.report_id, r.timestamp, message=r.message,
                   data={**data, "status": status}, **meta)
        return
    b.emit(r.event_type, r.report_id, r.timestamp, step_id=r.step_id, message=r.message,
           data=data, **meta)
    if r.event_type in STEP_REPORT_TYPES:
        if st.mode == "orchestrated" and st.plan is not None:
            orchestrate.advance(b, r.report_id, b.received_at)
        else:
            _complete_if_plan_done(b, r.report_id)


def _complete_if_plan_done(b: Builder, cause_id: str) -> None:
    st = b.state
    if st is None or st.finished:
        return
    outcome = plan_outcome(st)
    if outcome is None:
        return
    assert st.plan is not None
    ends = [a.finished_at or a.started_at for s in st.plan.steps if s.id in st.steps
            for a in attempts_of(st.steps[s.id])]  # fmt: skip
    ts = max(ends) if ends else b.received_at
    b.emit("execution_completed", cause_id, ts, message=f"execution {outcome}",
           data={"status": outcome})
