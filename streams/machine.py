"""The pure state machine: ``decide(state, message)`` and ``evolve(state, event)``.

No I/O, no clock, no randomness: time comes in as the message's ``received_at``, ids
are derived from ``(execution_id, seq)``. A new state is always the fold of the events
decide() emitted, so a projector folding the archived events reaches the same state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.contracts import (
    STEP_REPORT_TYPES,
    Event,
    FinishExecution,
    Rehydrate,
    Report,
    ReportBatch,
    StartExecution,
    Wake,
    event_id_for,
    iso_ms,
    ms_of,
)
from streams.plan import Plan
from streams.state import ExecutionState, StepReport, StepState, attempts_of, plan_outcome

DEFINITION_KEYS = ("mode", "plan", "inputs", "environment", "workflow_id", "system", "module",
                   "labels")  # fmt: skip


@dataclass(frozen=True)
class MachineConfig:
    """Settings the machine needs; passed in so decide() stays a pure function."""

    tracked_idle_timeout_ms: int = 86_400_000


@dataclass(frozen=True)
class Decision:
    state: ExecutionState | None
    events: tuple[Event, ...] = ()
    tasks: tuple[dict[str, Any], ...] = ()


Message = StartExecution | FinishExecution | ReportBatch | Wake | Rehydrate


def decide(state: ExecutionState | None, msg: Message, cfg: MachineConfig) -> Decision:
    """Apply one message: fire due timers at ``msg.received_at``, then the message."""
    if isinstance(msg, Rehydrate):
        archived = ExecutionState.model_validate(msg.state)
        newer = state is None or state.seq < archived.seq
        return Decision(archived if newer else state)
    b = _Builder(state, msg)
    _fire_timers(b, msg.received_at, cfg)
    if isinstance(msg, StartExecution):
        _start(b, msg)
    elif isinstance(msg, FinishExecution):
        _finish(b, msg)
    elif isinstance(msg, ReportBatch):
        for report in msg.reports:
            _report(b, report)
    return Decision(b.state, tuple(b.events))


def next_due_at(state: ExecutionState, cfg: MachineConfig) -> int | None:
    """When this execution's earliest timer fires (epoch ms), or None."""
    if state.finished or state.mode != "tracked":
        return None
    return state.last_activity_at + cfg.tracked_idle_timeout_ms


# ----------------------------------------------------------------------------- evolve


def evolve(state: ExecutionState | None, event: Event) -> ExecutionState:
    """Fold one event into the state (the only way state changes)."""
    if state is None:
        state = ExecutionState(execution_id=event.execution_id, tenant=event.tenant)
    upd: dict[str, Any] = {"seq": event.seq}
    new_ids = {event.cause_id}
    if "report_id" in event.data:
        new_ids.add(str(event.data["report_id"]))
    if not new_ids <= state.applied:
        upd["applied"] = state.applied | new_ids
    if event.received_at:
        upd["last_activity_at"] = max(state.last_activity_at, ms_of(event.received_at))
    ts = ms_of(event.timestamp)
    kind = event.event_type
    if kind in ("execution_started", "execution_updated"):
        upd.update(_definition(event.data))
        if kind == "execution_started":
            upd["started_at"] = ts
            upd["status"] = "running"
    elif kind in STEP_REPORT_TYPES and event.step_id:
        upd["steps"] = _with_report(state, event, ts)
        start = ts - int(event.data.get("duration_ms") or 0)
        upd["started_at"] = min(state.started_at, start) if state.started_at else start
    elif kind == "execution_completed":
        upd["status"] = upd["final_status"] = event.data.get("status", "succeeded")
        upd["finished_at"] = ts
        upd["message"] = event.message
        upd["error_type"] = event.data.get("error_type")
    return state.model_copy(update=upd)


def _definition(data: dict[str, Any]) -> dict[str, Any]:
    out = {k: data[k] for k in DEFINITION_KEYS if data.get(k) is not None}
    if "plan" in out:
        out["plan"] = Plan.model_validate(out["plan"])
    out["defined"] = bool(data.get("defined"))
    return out


def _with_report(state: ExecutionState, event: Event, ts: int) -> dict[str, StepState]:
    assert event.step_id is not None
    d = event.data
    report = StepReport(
        report_id=str(d.get("report_id") or event.cause_id),
        event_type=event.event_type,
        ts=ts,
        duration_ms=int(d["duration_ms"]) if d.get("duration_ms") is not None else None,
        error=d.get("error"),
        error_type=d.get("error_type"),
        retryable=bool(d.get("retryable", False)),
    )
    steps = dict(state.steps)
    old = steps.get(event.step_id) or StepState(step_id=event.step_id)
    if any(r.report_id == report.report_id for r in old.reports):
        return steps
    steps[event.step_id] = StepState(
        step_id=event.step_id,
        system=old.system or event.system,
        module=old.module or event.module,
        reports=sorted([*old.reports, report], key=StepReport.sort_key),
    )
    return steps


# ----------------------------------------------------------------------------- decide


@dataclass
class _Builder:
    state: ExecutionState | None
    msg: Message
    events: list[Event] = field(default_factory=list)

    def applied(self, cause_id: str) -> bool:
        return self.state is not None and cause_id in self.state.applied

    def emit(
        self, kind: str, cause_id: str, ts: int, *, step_id: str | None = None,
        message: str = "", data: dict[str, Any] | None = None, system: str | None = None,
        module: str | None = None, workflow_id: str | None = None,
    ) -> None:
        st = self.state
        seq = (st.seq if st else 0) + 1
        eid = self.msg.execution_id
        plan_step = st.plan.step(step_id) if st and st.plan and step_id else None
        event = Event(
            event_id=event_id_for(eid, seq),
            cause_id=cause_id,
            execution_id=eid,
            seq=seq,
            event_type=kind,  # type: ignore[arg-type]
            step_id=step_id,
            timestamp=iso_ms(ts),
            message=message,
            data=data or {},
            workflow_id=workflow_id or (st.workflow_id if st else None),
            system=system or (plan_step.system if plan_step else None)
            or (st.system if st else None),
            module=module or (plan_step.module if plan_step else None)
            or (st.module if st else None),
            tenant=st.tenant if st else self.msg.tenant,
            labels=st.labels if st else {},
            received_at=iso_ms(self.msg.received_at),
        )
        self.state = evolve(st, event)
        self.events.append(event)


def _fire_timers(b: _Builder, now: int, cfg: MachineConfig) -> None:
    st = b.state
    if st is None:
        return
    due = next_due_at(st, cfg)
    if due is not None and due <= now:
        b.emit("execution_completed", f"timer:idle:{due}", due,
               message="no report within the tracked idle timeout",
               data={"status": "failed", "error_type": "Abandoned", "due_at": iso_ms(due)})


def _start(b: _Builder, msg: StartExecution) -> None:
    if b.applied(msg.command_id):
        return
    definition = {
        "mode": msg.mode, "plan": msg.plan.model_dump(by_alias=True) if msg.plan else None,
        "inputs": msg.inputs, "environment": msg.environment, "workflow_id": msg.workflow_id,
        "system": msg.system, "module": msg.module, "labels": msg.labels, "defined": True,
        "actor": msg.actor,
    }  # fmt: skip
    if b.state is None:
        b.emit("execution_started", msg.command_id, msg.received_at, message="execution started",
               data=definition, workflow_id=msg.workflow_id, system=msg.system, module=msg.module)
    elif not b.state.defined and not b.state.finished:
        b.emit("execution_updated", msg.command_id, msg.received_at,
               message="definition attached by a start command", data=definition,
               workflow_id=msg.workflow_id)
        _complete_if_plan_done(b, msg.command_id)
    # else: the same execution started again: idempotent, nothing new.


def _finish(b: _Builder, msg: FinishExecution) -> None:
    st = b.state
    if st is None or b.applied(msg.command_id):
        return
    if st.finished:
        b.emit("command_rejected", msg.command_id, msg.received_at,
               message=f"execution already {st.status}",
               data={"command": "finish", "reason": "already_finished", "status": st.status})
    elif st.mode != "tracked":
        b.emit("command_rejected", msg.command_id, msg.received_at,
               message="finish applies to tracked executions; use stop",
               data={"command": "finish", "reason": "not_tracked", "status": st.status})
    else:
        b.emit("execution_completed", msg.command_id, msg.received_at,
               message=msg.message or f"finished by hand as {msg.status}",
               data={"status": msg.status, "by": msg.actor})


def _report(b: _Builder, r: Report) -> None:
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
    if r.event_type == "execution_completed":
        if not st.finished:
            status = data.get("status") or "succeeded"
            b.emit("execution_completed", r.report_id, r.timestamp, message=r.message,
                   data={**data, "status": status}, **meta)
        return
    b.emit(r.event_type, r.report_id, r.timestamp, step_id=r.step_id, message=r.message,
           data=data, **meta)
    if r.event_type in STEP_REPORT_TYPES:
        _complete_if_plan_done(b, r.report_id)


def _complete_if_plan_done(b: _Builder, cause_id: str) -> None:
    st = b.state
    if st is None or st.finished:
        return
    outcome = plan_outcome(st)
    if outcome is None:
        return
    assert st.plan is not None
    ends = [a.finished_at or a.started_at for s in st.plan.steps if s.id in st.steps
            for a in attempts_of(st.steps[s.id])]  # fmt: skip
    ts = max(ends) if ends else b.msg.received_at
    b.emit("execution_completed", cause_id, ts, message=f"execution {outcome}",
           data={"status": outcome})
