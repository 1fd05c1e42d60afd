"""The filters every analytics read takes (issue: analytics), as bound-parameter SQL.

One ``Filters`` value describes a selection; ``executions_where`` and ``records_where``
turn it into a boolean SQL expression over the ``executions`` and ``step_records`` tables
with its parameters (names prefixed ``f_``), never formatting user input into SQL.
The time window is on the execution's (or the attempt's) start time.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ExecutionStatus = Literal[
    "pending", "queued", "running", "paused", "succeeded", "failed", "stopped"
]
STEP_STATUSES = ("running", "succeeded", "failed", "skipped")


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: str = Field(default="default", min_length=1, max_length=100)
    execution_id: str | None = Field(default=None, max_length=200)
    workflow_id: str | None = Field(default=None, max_length=200)
    system: str | None = Field(default=None, max_length=200)
    module: str | None = Field(default=None, max_length=200)
    status: ExecutionStatus | None = None
    environment: str | None = Field(default=None, max_length=50)
    step_id: str | None = Field(default=None, max_length=200)
    error_type: str | None = Field(default=None, max_length=200)
    since_ms: int | None = None  # `from`, inclusive
    until_ms: int | None = None  # `to`, exclusive
    # Every one of these labels, with this value ({"k": "v"} in a body, `label=k:v` in a query)
    labels: tuple[tuple[str, str], ...] = Field(default=(), max_length=20)

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        if isinstance(value, dict):
            value = tuple(sorted(value.items()))
        for pair in value if isinstance(value, list | tuple) else ():
            if isinstance(pair, list | tuple) and any(len(str(p)) > 200 for p in pair):
                raise ValueError("a label key or value is longer than 200 characters")
        return value

    @model_validator(mode="after")
    def _window(self) -> Filters:
        if self.since_ms is not None and self.until_ms is not None:
            if self.since_ms > self.until_ms:
                raise ValueError("from must not be after to")
        return self

    def label(self) -> str:
        """What the selection is, for file names: the execution id, else the filters."""
        if self.execution_id:
            return self.execution_id
        parts = [f"{k}-{v}" for k, v in self.model_dump(exclude_none=True).items()
                 if k not in ("tenant", "since_ms", "until_ms", "labels")]  # fmt: skip
        parts += [f"{k}-{v}" for k, v in self.labels]
        return "_".join(parts) or "all"


def _window(f: Filters, column: str, sql: list[str], params: dict[str, Any]) -> None:
    if f.since_ms is not None:
        sql.append(f"{column} >= fromUnixTimestamp64Milli({{f_since:Int64}}, 'UTC')")
        params["f_since"] = f.since_ms
    if f.until_ms is not None:
        sql.append(f"{column} < fromUnixTimestamp64Milli({{f_until:Int64}}, 'UTC')")
        params["f_until"] = f.until_ms


def _equal(f: Filters, columns: tuple[str, ...], params: dict[str, Any]) -> list[str]:
    """``column = {f_column}`` for each of ``columns`` that ``f`` sets (and its parameter);
    the columns are Filters fields of the same name."""
    out = []
    for column in columns:
        value = getattr(f, column)
        if value is not None:
            out.append(f"{column} = {{f_{column}:String}}")
            params[f"f_{column}"] = value
    return out


def _with_labels(f: Filters, sql: list[str], params: dict[str, Any]) -> None:
    for i, (key, value) in enumerate(f.labels):
        sql.append(f"labels[{{f_lk{i}:String}}] = {{f_lv{i}:String}}")
        params[f"f_lk{i}"], params[f"f_lv{i}"] = key, value


def executions_where(f: Filters, db: str) -> tuple[str, dict[str, Any]]:
    """A condition over ``{db}.executions_by_time`` (``db`` already an identifier); without
    ``step_id`` and ``error_type`` over ``{db}.executions`` too, which has the same columns.
    ``step_id`` and ``error_type`` select executions with such a step attempt (or such a
    final error)."""
    params: dict[str, Any] = {"f_tenant": f.tenant}
    sql = ["tenant = {f_tenant:String}",
           *_equal(f, ("execution_id", "workflow_id", "status", "environment"), params)]
    for column, array in (("system", "systems"), ("module", "modules"), ("step_id", "step_ids"),
                          ("error_type", "error_types")):  # fmt: skip
        value = getattr(f, column)
        if value is not None:
            sql.append(f"has({array}, {{f_{column}:String}})")
            params[f"f_{column}"] = value
    if f.step_id is not None and f.error_type is not None:  # both in one attempt
        sql.append("arrayExists((s, e) -> s = {f_step_id:String} AND e = {f_error_type:String}, "
                   "a_step_id, a_error_type)")  # fmt: skip
    elif f.error_type is not None:  # or the execution's own final error
        sql[-1] = f"({sql[-1]} OR error_type = {{f_error_type:String}})"
    _with_labels(f, sql, params)
    _window(f, "started_at", sql, params)
    return " AND ".join(sql), params


def records_where(f: Filters, db: str) -> tuple[str, dict[str, Any]]:
    """A condition over ``{db}.step_records``; ``status`` there is the execution's status,
    so it selects the attempts of executions in that status."""
    params: dict[str, Any] = {"f_tenant": f.tenant}
    sql = ["tenant = {f_tenant:String}", *_equal(f, (
        "execution_id", "workflow_id", "system", "module", "step_id", "error_type"), params)]
    if f.status is not None or f.environment is not None or f.labels:
        inner = ["tenant = {f_tenant:String}", *_equal(f, ("status", "environment"), params)]
        _with_labels(f, inner, params)
        sql.append(f"execution_id IN (SELECT execution_id FROM {db}.executions_by_time FINAL "
                   f"WHERE {' AND '.join(inner)})")  # fmt: skip
    _window(f, "started_at", sql, params)
    return " AND ".join(sql), params
