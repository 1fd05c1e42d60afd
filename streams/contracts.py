"""Messages that cross process boundaries: the event contract and the worker's inputs.

Times inside worker messages are epoch milliseconds (``received_at`` is stamped by the
API and is the only clock the state machine sees). Events carry ISO-8601 UTC strings,
as the public contract in DESIGN.md shows.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from streams.admission_contracts import (
    ADMISSION_KEY,
    AdmissionMessage,
    AdmissionReset,
    Enqueue,
    Occupy,
    Release,
    SetLimits,
)
from streams.plan import Plan

__all__ = ["ADMISSION_KEY", "AdmissionMessage", "AdmissionReset", "Enqueue", "Occupy",
           "Release", "SetLimits"]  # re-exported: every worker message is named here

EventType = Literal[
    "execution_started",
    "execution_updated",  # additive: a start command that arrived after the first report
    "execution_paused",
    "execution_resumed",
    "execution_completed",
    "step_scheduled",
    "step_started",
    "step_succeeded",
    "step_failed",
    "step_retry_scheduled",
    "step_skipped",
    "user_input_required",
    "input_received",
    "log",
    "metric",
    "command_rejected",
    "execution_queued",  # additive: waits for a running slot (limits)
    "execution_dequeued",  # additive: got its slot and runs
]

ReportedType = Literal[
    "execution_started",
    "execution_completed",
    "step_started",
    "step_succeeded",
    "step_failed",
    "step_skipped",
    "log",
    "metric",
]
STEP_REPORT_TYPES = frozenset({"step_started", "step_succeeded", "step_failed", "step_skipped"})

FinalStatus = Literal["succeeded", "failed", "stopped"]
Mode = Literal["tracked", "orchestrated"]


def event_id_for(execution_id: str, seq: int) -> str:
    """Stable id of an execution's seq-th event: a replay gives the same id."""
    return hashlib.blake2b(f"{execution_id}\x1f{seq}".encode(), digest_size=16).hexdigest()


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Event(_Frozen):
    """One entry of an execution's log (`runledger.events`, ClickHouse `events`)."""

    event_id: str
    cause_id: str
    execution_id: str
    seq: int
    event_type: EventType
    step_id: str | None = None
    timestamp: str
    message: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
    workflow_id: str | None = None
    system: str | None = None
    module: str | None = None
    tenant: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    received_at: str | None = None  # additive: when the API accepted the cause


class Report(_Frozen):
    """A step event reported by another system, normalised by the API."""

    report_id: str
    event_type: ReportedType
    step_id: str | None = None
    timestamp: int  # epoch ms, the reporter's clock
    message: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
    workflow_id: str | None = None
    system: str | None = None
    module: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class _Message(_Frozen):
    execution_id: str
    tenant: str = "default"
    received_at: int  # epoch ms, stamped by the API (or the timer scanner)


class StartExecution(_Message):
    kind: Literal["start"] = "start"
    command_id: str
    actor: str = "anonymous"
    mode: Mode = "tracked"
    timeout_sec: float | None = None  # orchestrated: stop what still runs after this long
    debug: bool = False  # orchestrated: pause before every step (`step` runs the next)
    plan: Plan | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    environment: str = "dev"
    labels: dict[str, str] = Field(default_factory=dict)
    workflow_id: str | None = None
    system: str | None = None
    module: str | None = None
    parent_execution_id: str | None = None  # additive: started by a sub_execution step
    parent_step_id: str | None = None
    # additive: wait for a running slot (the API sets it while limits are configured);
    # among those waiting, a higher priority starts first, then the earlier start
    queued: bool = False
    priority: int = 0


class FinishExecution(_Message):
    kind: Literal["finish"] = "finish"
    command_id: str
    actor: str = "anonymous"
    status: FinalStatus
    message: str = ""


class ReportBatch(_Message):
    """The reports of one HTTP batch that belong to one execution, in request order."""

    kind: Literal["report"] = "report"
    reports: tuple[Report, ...]


class StopExecution(_Message):
    """Stop an execution: nothing more starts, in-flight steps are abandoned."""

    kind: Literal["stop"] = "stop"
    command_id: str
    actor: str = "anonymous"
    reason: str = ""


ControlAction = Literal["pause", "resume", "retry", "rerun", "step", "input"]


class ControlCommand(_Message):
    """Steer an orchestrated execution (DESIGN.md "Control verdicts"). ``step_id`` is the
    step a ``rerun`` starts from or the step an ``input`` answers; ``inputs`` are a
    rerun's edited inputs (merged over the old ones); ``data`` is an input's answer."""

    kind: Literal["control"] = "control"
    command_id: str
    actor: str = "anonymous"
    action: ControlAction
    step_id: str | None = None
    inputs: dict[str, Any] | None = None
    data: Any = None


class TaskUpdate(_Message):
    """A step executor's word on a task (`runledger.step-events`): it started it, or it
    finished it. ``received_at`` is the executor's clock at that moment."""

    kind: Literal["task"] = "task"
    task_id: str
    step_id: str
    attempt: int = Field(ge=1)
    phase: Literal["started", "succeeded", "failed"]
    output: dict[str, Any] | None = None
    error: str | None = None
    error_type: str | None = None
    retryable: bool = False  # the failure's class: may a retry help?
    logs: tuple[str, ...] = ()  # log lines for the step (secrets already masked)
    # additive: on an outcome with no ``started`` update before it (a quick call), when
    # the executor started it (epoch ms)
    started_at: int | None = None


class ChildFinished(_Message):
    """A sub-execution's outcome, sent by the worker to its parent (``execution_id``) on
    `runledger.step-events`; ``child_seq`` (the child's last seq) makes a resend a no-op."""

    kind: Literal["child"] = "child"
    child_id: str
    step_id: str
    child_seq: int
    status: FinalStatus
    output: dict[str, Any] = Field(default_factory=dict)
    message: str = ""
    error_type: str | None = None


class Wake(_Message):
    """Sent by a worker's timer scanner: fire every timer due at ``received_at``."""

    kind: Literal["wake"] = "wake"


class Rehydrate(_Message):
    """An execution's archived state (the fold of its archived events), sent by restore and
    by the API for an execution the worker may have evicted. Older than what the worker
    holds: ignored."""

    kind: Literal["rehydrate"] = "rehydrate"
    state: dict[str, Any]


class Admit(_Message):
    """The admission queue's word that a queued execution may run now."""

    kind: Literal["admit"] = "admit"
    command_id: str


WorkerMessage = Annotated[
    StartExecution | FinishExecution | StopExecution | ControlCommand | ReportBatch | TaskUpdate
    | ChildFinished | Wake | Rehydrate | Admit | Enqueue | Occupy | Release | SetLimits
    | AdmissionReset,
    Field(discriminator="kind"),
]


def task_id_for(execution_id: str, step_id: str, attempt: int) -> str:
    """A step task's id: one per (execution, step, attempt), so a redelivery is the same."""
    return f"{execution_id}/{step_id}/{attempt}"


class StepTask(_Frozen):
    """A step's work on `runledger.tasks`, dispatched by the machine to step executors.

    ``config`` is already rendered (templates resolved against inputs and outputs), so an
    executor needs nothing but the task. ``timeout`` is in seconds."""

    task_id: str
    execution_id: str
    tenant: str = "default"
    step_id: str
    attempt: int = Field(ge=1)
    type: str
    system: str | None = None
    module: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    timeout: float | None = None
    dispatched_at: int  # epoch ms: the time of the message that dispatched it
    endpoint: str | None = None  # an HTTP-backed step type's URL (PlanStep.endpoint)
    # additive: per config string (its path), the secret names its template refers to;
    # the executor resolves those markers only (streams/secrets.py)
    secret_refs: dict[str, list[str]] = Field(default_factory=dict)


class EventsMessage(_Frozen):
    """A message on `runledger.events`: one execution's new events in seq order."""

    events: tuple[Event, ...]


class DeadLetter(_Frozen):
    """A message the worker could not decode or apply, on ``runledger.dead-letters``: the
    reason, where it was read, and its original bytes (base64)."""

    reason: str
    topic: str
    partition: int
    offset: int
    key: str = ""
    value_b64: str
    at: int  # epoch ms
