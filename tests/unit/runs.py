"""Driving decide() in unit tests: a run that keeps the events and tasks it produced."""

from __future__ import annotations

from typing import Any

from streams.contracts import (
    ControlCommand,
    Report,
    ReportBatch,
    StartExecution,
    StepTask,
    TaskUpdate,
)
from streams.machine import MachineConfig, decide
from streams.plan import Plan
from streams.state import ExecutionState, step_statuses

CFG = MachineConfig()
T0 = 1_000_000


def plan(*steps: dict[str, Any]) -> Plan:
    return Plan.model_validate({"id": "p", "steps": list(steps)})


def start(p: Plan, at: int = T0, timeout_sec: float | None = None, debug: bool = False,
          **inputs: Any) -> StartExecution:
    return StartExecution(execution_id="e1", received_at=at, command_id="c1",
                          mode="orchestrated", plan=p, inputs=inputs, timeout_sec=timeout_sec,
                          debug=debug)


def as_stored(state: ExecutionState | None) -> ExecutionState | None:
    """``state`` as the worker reads it back from its table: through its stored form."""
    if state is None:
        return None
    back = ExecutionState.model_validate_json(state.stored_json())
    assert back == state
    return back


def reported(n_steps: int) -> ExecutionState:
    """A reported execution of ``n_steps`` steps, each started and succeeded."""
    state = None
    for i in range(n_steps):
        for j, kind in enumerate(("step_started", "step_succeeded")):
            r = Report(report_id=f"ex_1-{i}-{kind}", event_type=kind, step_id=f"step_{i}",
                       timestamp=1_700_000_000_000 + 10 * i + j, system=f"S{i % 3}",
                       module=f"M{i}", data={"duration_ms": 5})  # fmt: skip
            msg = ReportBatch(execution_id="ex_1", received_at=1_700_000_000_100, reports=(r,))
            state = decide(state, msg, CFG).state
    assert state is not None
    return state


def update(task: StepTask, phase: str, at: int, **kw: Any) -> TaskUpdate:
    return TaskUpdate(execution_id=task.execution_id, received_at=at, task_id=task.task_id,
                      step_id=task.step_id, attempt=task.attempt, phase=phase, **kw)


class Run:
    """Feeds messages through decide() and keeps what came out."""

    def __init__(self) -> None:
        self.state: ExecutionState | None = None
        self.events: list[Any] = []
        self.tasks: list[StepTask] = []
        self.messages: list[Any] = []  # to other executions

    def __call__(self, msg: Any) -> Run:
        d = decide(self.state, msg, CFG)
        self.state = as_stored(d.state)
        self.events.extend(d.events)
        self.tasks.extend(d.tasks)
        self.messages.extend(d.messages)
        return self

    def task(self, step_id: str) -> StepTask:
        return [t for t in self.tasks if t.step_id == step_id][-1]

    def kinds(self, step_id: str) -> list[str]:
        return [e.event_type for e in self.events if e.step_id == step_id]

    def statuses(self) -> dict[str, str]:
        assert self.state is not None
        return dict(step_statuses(self.state))


def finish_ok(r: Run, step_id: str, at: int, output: dict[str, Any] | None = None) -> None:
    t = r.task(step_id)
    r(update(t, "started", at))(update(t, "succeeded", at + 10, output=output or {}))


def control(action: str, at: int, cid: str | None = None, **kw: Any) -> ControlCommand:
    return ControlCommand(execution_id="e1", received_at=at, command_id=cid or f"{action}{at}",
                          action=action, **kw)  # type: ignore[arg-type]
