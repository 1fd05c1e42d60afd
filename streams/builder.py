"""What decide() accumulates while it applies one message: the state so far, the events
it emitted (each already folded in), the step tasks it dispatched and the messages it
sends to other executions (a sub-execution's start, stop or outcome)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.admission_contracts import Enqueue, Occupy, Release
from streams.composite import plan_step_of
from streams.contracts import (
    ChildFinished,
    ControlCommand,
    Event,
    StartExecution,
    StepTask,
    StopExecution,
    event_id_for,
)
from streams.fold import evolve
from streams.state import ExecutionState
from streams.times import iso_ms

# To other executions (a sub-execution's start, stop or outcome) and to the admission queue.
Outbound = (
    StartExecution | StopExecution | ControlCommand | ChildFinished | Enqueue | Occupy | Release
)


@dataclass
class Builder:
    state: ExecutionState | None
    execution_id: str
    tenant: str
    received_at: int
    events: list[Event] = field(default_factory=list)
    tasks: list[StepTask] = field(default_factory=list)
    outbound: list[Outbound] = field(default_factory=list)

    def applied(self, cause_id: str) -> bool:
        return self.state is not None and cause_id in self.state.applied

    def emit(
        self, kind: str, cause_id: str, ts: int, *, step_id: str | None = None,
        message: str = "", data: dict[str, Any] | None = None, system: str | None = None,
        module: str | None = None, workflow_id: str | None = None,
    ) -> None:
        st = self.state
        seq = (st.seq if st else 0) + 1
        eid = self.execution_id
        plan_step = plan_step_of(st.plan, step_id) if st and st.plan and step_id else None
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
            tenant=st.tenant if st else self.tenant,
            labels=st.labels if st else {},
            received_at=iso_ms(self.received_at),
        )
        self.state = evolve(st, event)
        self.events.append(event)

    def fail_step(
        self, step_id: str, attempt: int, error: str, error_type: str, cause_id: str, ts: int,
        duration_ms: int = 0,
    ) -> None:  # fmt: skip
        """A step attempt the machine itself fails for good (no retry)."""
        self.emit("step_failed", cause_id, ts, step_id=step_id, message=error,
                  data={"attempt": attempt, "error": error, "error_type": error_type,
                        "retryable": False, "duration_ms": duration_ms})  # fmt: skip
