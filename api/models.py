"""HTTP request bodies (kept apart from the domain's messages)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from streams.contracts import FinalStatus, ReportedType
from streams.plan import Plan

ID_PATTERN = r"^[A-Za-z0-9_.:\-]+$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class StartRequest(_Body):
    """`POST /executions`. Orchestrated (the default) runs ``plan``; tracked executions are
    run elsewhere and reported over `POST /events` (a plan is optional there)."""

    mode: Literal["tracked", "orchestrated"] = "orchestrated"
    execution_id: str | None = Field(default=None, min_length=1, max_length=200,
                                     pattern=ID_PATTERN)
    plan: Plan | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    environment: str = Field(default="dev", max_length=50)  # checked with the inputs
    labels: dict[str, str] = Field(default_factory=dict, max_length=50)
    workflow_id: str | None = Field(default=None, max_length=200)
    system: str | None = Field(default=None, max_length=200)
    module: str | None = Field(default=None, max_length=200)
    tenant: str = Field(default="default", min_length=1, max_length=100)
    timeout_sec: float | None = Field(default=None, alias="timeoutSec")
    debug: bool = False  # orchestrated: pause before every step; POST …/step runs the next
    # While limits hold executions back, a higher priority starts first (then FIFO).
    priority: int = Field(default=0, ge=-1000, le=1000)

    @model_validator(mode="after")
    def _valid(self) -> StartRequest:
        if self.mode == "orchestrated" and self.plan is None:
            raise ValueError("an orchestrated execution needs a plan (executions run by other "
                             "systems and reported over POST /events use mode 'tracked')")
        return self


class StopRequest(_Body):
    reason: str = Field(default="", max_length=2000)


class RerunRequest(_Body):
    from_step: str = Field(min_length=1, max_length=200)
    inputs: dict[str, Any] | None = None  # merged over the execution's inputs


class InputRequest(_Body):
    step_id: str = Field(min_length=1, max_length=200)
    data: Any = None


REPORTED_FROM = datetime(1970, 1, 1, tzinfo=UTC)
REPORTED_UNTIL = datetime(2200, 1, 1, tzinfo=UTC)


class ReportedEvent(_Body):
    """One event reported by an external system (`POST /events`)."""

    model_config = ConfigDict(extra="ignore")

    event_id: str | None = Field(default=None, min_length=1, max_length=200)
    execution_id: str = Field(min_length=1, max_length=200, pattern=ID_PATTERN)
    event_type: ReportedType
    step_id: str | None = Field(default=None, min_length=1, max_length=200)
    timestamp: datetime
    message: str = Field(default="", max_length=10_000)
    data: dict[str, Any] = Field(default_factory=dict)
    workflow_id: str | None = Field(default=None, max_length=200)
    system: str | None = Field(default=None, max_length=200)
    module: str | None = Field(default=None, max_length=200)
    tenant: str = Field(default="default", min_length=1, max_length=100)
    labels: dict[str, str] = Field(default_factory=dict, max_length=50)

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        v = v.replace(tzinfo=UTC) if v.tzinfo is None else v
        if not REPORTED_FROM <= v < REPORTED_UNTIL:  # what the archive's time columns hold
            raise ValueError(f"must be from {REPORTED_FROM.year} to {REPORTED_UNTIL.year - 1}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ReportedEvent:
        if self.event_type.startswith("step_") and not self.step_id:
            raise ValueError(f"step_id is required for {self.event_type}")
        if self.event_type == "execution_completed":
            status = self.data.get("status", "succeeded")
            if status not in ("succeeded", "failed", "stopped"):
                raise ValueError("data.status must be succeeded, failed or stopped")
        if self.event_type == "log" and self.data.get("level", "info") not in (
            "info", "warn", "error"):
            raise ValueError("data.level must be info, warn or error")
        dur = self.data.get("duration_ms")
        if dur is not None and (not isinstance(dur, int | float) or dur < 0):
            raise ValueError("data.duration_ms must be a non-negative number")
        return self


class EventBatch(_Body):
    events: list[ReportedEvent] = Field(min_length=1, max_length=5000)


class FinishRequest(_Body):
    status: FinalStatus
    message: str = Field(default="", max_length=2000)


class PlanBody(_Body):
    plan: Plan


class InputsBody(_Body):
    plan: Plan | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    environment: str | None = None
    timeout_sec: float | None = Field(default=None, alias="timeoutSec")
