"""Request bodies of the workflow routes (seed 003's field names; DESIGN.md's table)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from api.models import ID_PATTERN
from streams.definition import Connection, Definition, Edge, Node
from streams.plan import PlanStep

# What a read adds to a saved workflow: an exported workflow imports with them in place.
READ_ONLY = ("status", "valid", "problems", "created_at", "updated_at", "created_by",
             "updated_by", "deleted")  # fmt: skip


class WorkflowBody(BaseModel):
    """A workflow to save (POST, import) or the fields to change (PUT). Seed 003's own
    ``version`` ("1.0") is kept as ``version_label``; the saved version is a number."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str | None = Field(default=None, min_length=1, max_length=200, pattern=ID_PATTERN)
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=10_000)
    version: str | int | None = None
    version_label: str | None = Field(default=None, max_length=50)
    config: dict[str, Any] | None = None
    tags: list[str] | None = Field(default=None, max_length=50)
    is_active: bool | None = None
    steps: list[PlanStep] | None = Field(default=None, max_length=1000)
    nodes: list[Node] | None = Field(default=None, max_length=1000)
    connections: list[Connection] | None = Field(default=None, max_length=5000)
    edges: list[Edge] | None = Field(default=None, max_length=5000)

    @field_validator("tags")
    @classmethod
    def _short_tags(cls, tags: list[str] | None) -> list[str] | None:
        if tags is not None and any(not 0 < len(t) <= 100 for t in tags):
            raise ValueError("a tag is 1 to 100 characters")
        return tags

    @model_validator(mode="before")
    @classmethod
    def _drop_read_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in READ_ONLY}
        return data

    def changes(self) -> dict[str, Any]:
        """The fields this body sets, as stored (edges become SEQUENCE connections)."""
        out = self.model_dump(mode="json", exclude_unset=True,
                              exclude={"id", "version", "edges", "steps"})  # fmt: skip
        if "steps" in self.model_fields_set:  # in the plan contract's words (dependsOn)
            out["steps"] = (None if self.steps is None else
                            [s.model_dump(mode="json", by_alias=True) for s in self.steps])
        if isinstance(self.version, str) and "version_label" not in out:
            out["version_label"] = self.version
        if self.edges:
            edges = [e.model_dump(mode="json", exclude_unset=True) for e in self.edges]
            out["connections"] = (out.get("connections") or []) + edges
        return out


class ImportBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workflows: list[WorkflowBody] = Field(min_length=1, max_length=1000)


class GenerateBody(BaseModel):
    """`POST /plans/generate`: a saved workflow (a version of it), or a definition."""

    model_config = ConfigDict(extra="forbid")

    workflow_id: str | None = Field(default=None, min_length=1, max_length=200)
    version: int | None = Field(default=None, ge=1)
    definition: Definition | None = None
    tenant: str = Field(default="default", min_length=1, max_length=100)

    @model_validator(mode="after")
    def _one_source(self) -> GenerateBody:
        if (self.workflow_id is None) == (self.definition is None):
            raise ValueError("give workflow_id (and optionally version) or definition")
        return self


class RunOptions(BaseModel):
    """Seed 003's execute ``config``: executions always run asynchronously (202)."""

    model_config = ConfigDict(extra="forbid")

    async_: bool = Field(default=True, alias="async")
    timeout: float | None = Field(default=None, ge=30, le=86_400)

    @field_validator("async_")
    @classmethod
    def _async_only(cls, value: bool) -> bool:
        if not value:
            raise ValueError("executions run asynchronously: watch them over the WebSocket "
                             "or poll GET /api/v1/executions/{id}")  # fmt: skip
        return value


class ExecuteWorkflowBody(BaseModel):
    """`POST /workflows/{id}/execute` (seed 003: ``execution_name``, ``input_data``,
    ``config``), plus the fields of `POST /executions` that make sense for a saved one."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    execution_id: str | None = Field(default=None, min_length=1, max_length=200,
                                     pattern=ID_PATTERN)
    execution_name: str | None = Field(default=None, max_length=255)
    inputs: dict[str, Any] = Field(default_factory=dict, alias="input_data")
    version: int | None = Field(default=None, ge=1)
    config: RunOptions = Field(default_factory=RunOptions)
    environment: str = Field(default="dev", max_length=50)
    labels: dict[str, str] = Field(default_factory=dict, max_length=50)
    timeout_sec: float | None = Field(default=None, alias="timeoutSec")
    debug: bool = False
    priority: int = Field(default=0, ge=-1000, le=1000)
    tenant: str = Field(default="default", min_length=1, max_length=100)


class SeedExecuteBody(ExecuteWorkflowBody):
    """Seed 001's ``ExecutionCreate`` (`POST /api/v1/execute`): a saved workflow by
    ``workflow_id``, or an inline ``definition`` (nodes + edges or connections) that the
    execution runs, labelled with ``workflow_id`` when one is given."""

    workflow_id: str | None = Field(default=None, min_length=1, max_length=200,
                                    pattern=ID_PATTERN)
    definition: Definition | None = None

    @model_validator(mode="after")
    def _something_to_run(self) -> SeedExecuteBody:
        if self.workflow_id is None and self.definition is None:
            raise ValueError("give workflow_id (a saved workflow) or definition (nodes and "
                             "edges)")  # fmt: skip
        return self
