"""An execution's state: the fold of its events (pure data, no I/O).

A step keeps the reports it received (sorted, deduplicated by report id); its attempts
and status are derived from them, so any arrival order of the same reports gives the
same step (DESIGN.md: out-of-order reports are ordered by their timestamp).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from streams.composite import layout
from streams.contracts import FinalStatus, Mode
from streams.plan import Plan

ExecutionStatus = Literal[
    "pending", "queued", "running", "paused", "succeeded", "failed", "stopped"
]
StepStatus = Literal[
    "pending", "scheduled", "running", "waiting_input", "retrying",
    "succeeded", "failed", "skipped", "blocked", "stopped",
]  # fmt: skip
FINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "stopped"})
DONE_STEP_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "skipped", "blocked"})
ACTIVE_STEP_STATUSES: frozenset[str] = frozenset({"scheduled", "running", "retrying",
                                                  "waiting_input"})  # fmt: skip

# Within one timestamp a start sorts before an outcome.
_RANK = {"step_started": 0, "step_skipped": 1, "step_failed": 2, "step_succeeded": 2}


class StepReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    report_id: str
    event_type: str
    ts: int
    duration_ms: int | None = None
    error: str | None = None
    error_type: str | None = None
    retryable: bool = False

    def sort_key(self) -> tuple[int, int, str]:
        return (self.ts, _RANK.get(self.event_type, 3), self.report_id)


class Attempt(BaseModel):
    """One step attempt that started (a tracking record)."""

    model_config = ConfigDict(frozen=True)

    attempt: int
    status: Literal["running", "succeeded", "failed", "skipped"]
    started_at: int
    finished_at: int | None = None
    duration_ms: int | None = None
    error: str | None = None
    error_type: str | None = None
    retryable: bool = False


class StepState(BaseModel):
    step_id: str
    system: str | None = None
    module: str | None = None
    reports: list[StepReport] = Field(default_factory=list)
    # Orchestrated steps only:
    scheduled: int = 0  # the attempt most recently handed to a step executor (or awaited)
    scheduled_at: dict[int, int] = Field(default_factory=dict)  # attempt -> when scheduled
    output: dict[str, Any] | None = None  # the last successful attempt's output
    due_at: int | None = None  # when a delay ends, a retry is dispatched, an input times out
    due_kind: Literal["delay", "retry", "input"] | None = None
    waiting: bool = False  # a wait_input step waiting for its input
    cleared: int = 0  # attempts before a rerun: history, not the step's status
    items: list[Any] | None = None  # a loop's items, fixed when it first starts
    child: str | None = None  # a sub_execution's child execution id


class ExecutionState(BaseModel):
    execution_id: str
    tenant: str = "default"
    mode: Mode = "tracked"
    status: ExecutionStatus = "running"
    workflow_id: str | None = None
    system: str | None = None
    module: str | None = None
    environment: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    plan: Plan | None = None
    defined: bool = False  # a start command (not only reports) described it
    seq: int = 0
    applied: set[str] = Field(default_factory=set)  # command, report and timer ids
    steps: dict[str, StepState] = Field(default_factory=dict)
    started_at: int = 0
    finished_at: int | None = None
    final_status: FinalStatus | None = None
    message: str = ""
    error_type: str | None = None
    last_activity_at: int = 0
    timeout_at: int | None = None  # orchestrated: when what still runs is stopped
    debug: bool = False  # orchestrated, paused before every step; `step` runs the next
    debug_next: str | None = None  # debug: the step the last pause announced, till it starts
    parent_execution_id: str | None = None  # a sub-execution: who started it
    parent_step_id: str | None = None  # ... and for which of its steps
    # Limits (streams/admission.py): it went through the admission queue, when it was
    # queued, its priority there, and the timeout (ms) that starts once it runs
    admission: bool = False
    queued_at: int | None = None
    priority: int = 0
    queued_timeout_ms: int | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES

    def stored_json(self) -> str:
        """The form kept in the worker's table and in ClickHouse: fields at their default
        left out, ~40 % smaller for a reported execution and quicker to read back. What is
        left out reads back as the default of the code that reads it, so the defaults of
        every model below this one are part of what is stored (tests/unit/
        test_stored_state.py pins them)."""
        return self.model_dump_json(exclude_defaults=True)


def attempts_of(step: StepState) -> list[Attempt]:
    """Fold a step's reports (in timestamp order) into attempts."""
    out: list[Attempt] = []
    open_start: int | None = None
    for r in sorted(step.reports, key=StepReport.sort_key):
        if r.event_type == "step_started":
            if open_start is None:
                open_start = r.ts
            continue
        if r.event_type == "step_skipped":
            if open_start is None:
                out.append(Attempt(attempt=len(out) + 1, status="skipped", started_at=r.ts,
                                   finished_at=r.ts, duration_ms=0))
            continue
        status: Literal["succeeded", "failed"] = (
            "succeeded" if r.event_type == "step_succeeded" else "failed"
        )
        if open_start is None:
            start = r.ts - (r.duration_ms or 0)
        else:
            start = open_start
        duration = r.duration_ms if r.duration_ms is not None else max(r.ts - start, 0)
        out.append(Attempt(attempt=len(out) + 1, status=status, started_at=start,
                           finished_at=r.ts, duration_ms=duration, error=r.error,
                           error_type=r.error_type, retryable=r.retryable))
        open_start = None
    if open_start is not None:
        out.append(Attempt(attempt=len(out) + 1, status="running", started_at=open_start))
    return out


def start_time(step: StepState | None, now: int) -> int:
    """When a step the machine starts again now is recorded as started: after its last
    outcome (within one millisecond a start sorts before an outcome and would join the
    attempt that outcome closed)."""
    last = max((r.ts for r in step.reports), default=None) if step is not None else None
    return now if last is None or last < now else last + 1


def next_attempt(step: StepState | None) -> int:
    """The number the step's next attempt gets (attempts are counted across reruns)."""
    return max(step.scheduled, len(attempts_of(step))) + 1 if step else 1


def reported_status(step: StepState) -> StepStatus:
    """A step's status from its own events only (dependencies aside)."""
    if step.due_kind == "retry":
        return "retrying"
    if step.waiting:
        return "waiting_input"
    attempts = attempts_of(step)
    if step.scheduled > len(attempts):
        return "scheduled"
    if len(attempts) <= step.cleared:
        return "pending"
    last = attempts[-1]
    if last.status == "failed" and last.retryable:
        return "retrying"
    return last.status


def step_statuses(state: ExecutionState) -> dict[str, StepStatus]:
    """Every known step's status; plan steps that wait on a failed step are ``blocked``.
    A loop's body steps have no status of their own (their iterations do); a parallel's
    branch that never started reads as its parallel when that was skipped or blocked."""
    statuses: dict[str, StepStatus] = {sid: reported_status(s) for sid, s in state.steps.items()}
    if state.plan is not None:
        lay = layout(state.plan)
        for ps in state.plan.steps:
            if not lay.is_loop_member(ps.id):
                statuses.setdefault(ps.id, "pending")
        changed = True
        while changed:
            changed = False
            for ps in state.plan.steps:
                if statuses.get(ps.id) != "pending":
                    continue
                owner = statuses.get(lay.owner.get(ps.id, ""))
                if any(statuses.get(d) in ("failed", "blocked") for d in ps.depends_on):
                    statuses[ps.id] = "blocked"
                    changed = True
                elif owner in ("skipped", "blocked"):
                    statuses[ps.id] = owner
                    changed = True
    orchestrated = state.mode == "orchestrated"
    ended = state.status == "stopped" or (state.finished and orchestrated)
    for sid, st in statuses.items():
        if st == "failed" and (orchestrated or ended) and _abandoned(state.steps.get(sid)):
            statuses[sid] = "stopped"  # stopped by a command, a timeout or a decided race
        elif ended and st in ACTIVE_STEP_STATUSES:
            statuses[sid] = "stopped"
    return statuses


def _abandoned(step: StepState | None) -> bool:
    attempts = attempts_of(step) if step else []
    return bool(attempts) and attempts[-1].error_type == "Stopped"


def plan_outcome(state: ExecutionState) -> FinalStatus | None:
    """With a plan: ``failed``/``succeeded`` once no step can make progress, else None."""
    if state.plan is None:
        return None
    statuses = step_statuses(state)
    plan_ids = [s.id for s in state.plan.steps]
    if any(statuses[sid] not in DONE_STEP_STATUSES for sid in plan_ids):
        return None
    return "failed" if any(statuses[sid] == "failed" for sid in plan_ids) else "succeeded"


def progress_of(state: ExecutionState) -> float:
    if state.finished:
        return 1.0
    statuses = step_statuses(state)
    if not statuses:
        return 0.0
    done = sum(1 for st in statuses.values() if st in DONE_STEP_STATUSES)
    return round(done / len(statuses), 4)
