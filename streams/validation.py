"""Plan and input validation (pure): every problem at once, each naming its step or field.

Step types are known by name (seed spellings such as ``api`` or ``API_CALL`` map to
``api_call``); each type's ``config`` is checked against its pydantic model. Templates may
refer to ``input``, ``steps.<id>``, ``<id>``, ``loop``, ``execution`` and ``secrets``; any
other first name must be a step of the plan.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from streams.composite import composite_problems
from streams.plan import Plan, canonical_type, plan_problems
from streams.templates import ExpressionError, check_condition


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApiCallConfig(_Config):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    url: str = Field(min_length=1)
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    parameters: dict[str, Any] | None = None
    timeout: float = Field(default=10.0, gt=0, le=3600)
    output_mapping: dict[str, str] = Field(default_factory=dict)


class ConditionConfig(_Config):
    expression: str = Field(min_length=1)
    true_path: list[str] = Field(default_factory=list)
    false_path: list[str] = Field(default_factory=list)


class DelayConfig(_Config):
    seconds: float = Field(ge=0, le=31_536_000)


class ParallelConfig(_Config):
    branches: list[str] = Field(min_length=1)
    max_concurrent: int | None = Field(default=None, ge=1)
    wait_for_all: bool = True


class LoopConfig(_Config):
    items: Any = None
    condition: str | None = None
    body: list[str] = Field(min_length=1)
    max_iterations: int = Field(default=100, ge=1, le=100_000)
    break_on_error: bool = True


class TransformConfig(_Config):
    mapping: dict[str, Any] = Field(min_length=1)


class WaitInputConfig(_Config):
    prompt: str = ""
    input_schema: dict[str, Any] = Field(default_factory=dict)
    timeout_seconds: float | None = Field(default=None, gt=0)

    @field_validator("input_schema")
    @classmethod
    def _a_json_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from exc
        return schema


class SubExecutionConfig(_Config):
    """The child's plan, or a saved workflow (a ``version`` of it, else its current one)
    whose plan the API puts in ``plan`` when the execution starts."""

    plan: dict[str, Any] | None = None
    workflow_id: str | None = Field(default=None, min_length=1, max_length=200)
    version: int | None = Field(default=None, ge=1)
    inputs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _a_plan(self) -> SubExecutionConfig:
        if self.plan is None and self.workflow_id is None:
            raise ValueError("give plan or workflow_id")
        return self


class NoConfig(_Config):
    pass


class ExternalConfig(BaseModel):
    model_config = ConfigDict(extra="allow")


STEP_CONFIGS: dict[str, type[BaseModel]] = {
    "api_call": ApiCallConfig, "condition": ConditionConfig, "delay": DelayConfig,
    "parallel": ParallelConfig, "loop": LoopConfig, "transform": TransformConfig,
    "wait_input": WaitInputConfig, "sub_execution": SubExecutionConfig, "start": NoConfig,
    "end": NoConfig, "external": ExternalConfig,
}  # fmt: skip
_STEP_LISTS = {"condition": ("true_path", "false_path"), "parallel": ("branches",),
               "loop": ("body",)}  # fmt: skip
_TEMPLATE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?")
_ROOT_NAMES = frozenset({"input", "inputs", "steps", "loop", "execution", "secrets", "true",
                         "false", "none", "True", "False", "None"})
INPUT_TYPES = ("string", "integer", "number", "boolean", "object", "array", "date")
ENVIRONMENTS = ("dev", "test", "stage", "prod")
# An execution's timeout, in seconds. Seed 000's run dialog offers 30-300; seed 003 runs
# saved workflows with 600: the API takes up to a day and the dialog keeps its own range.
TIMEOUT_MIN, TIMEOUT_MAX = 30, 86_400


def validate_plan(
    plan: Plan, plugins: Mapping[str, type[BaseModel]] | None = None
) -> list[dict[str, str]]:
    """Every structural, type, config and template problem of ``plan``. ``plugins``: the
    step types registered by step executors (entry points) with their config models."""
    problems = plan_problems(plan)
    ids = {s.id for s in plan.steps}
    configs = {**(plugins or {}), **STEP_CONFIGS}
    for step in plan.steps:
        kind = canonical_type(step.type)
        model = configs.get(kind)
        if model is None:
            known = ", ".join(sorted(configs))
            problems.append({"step_id": step.id,
                             "problem": f"unknown step type {step.type!r} (known: {known})"})
            continue
        try:
            model.model_validate(step.config)
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "config"
                problems.append({"step_id": step.id,
                                 "problem": f"config.{where}: {err['msg']}"})  # fmt: skip
        for key in ("expression", "condition"):
            expr = step.config.get(key) if kind in ("condition", "loop") else None
            if isinstance(expr, str):
                try:
                    check_condition(expr)
                except ExpressionError as exc:
                    problems.append({"step_id": step.id, "problem": f"config.{key}: {exc}"})
        for key in _STEP_LISTS.get(kind, ()):
            for ref in step.config.get(key) or ():
                if ref not in ids:
                    problems.append({"step_id": step.id,
                                     "problem": f"config.{key} names unknown step {ref!r}"})
        for ref in sorted(_template_refs(step.config) - ids - _ROOT_NAMES):
            problems.append({"step_id": step.id,
                             "problem": f"template refers to unknown step {ref!r}"})
        for ref in sorted(_step_refs(step.config) - ids):
            problems.append({"step_id": step.id,
                             "problem": f"template refers to unknown step {ref!r}"})
    problems += composite_problems(plan) + _unreachable(plan)
    for step in plan.steps:
        child = step.config.get("plan") if canonical_type(step.type) == "sub_execution" else None
        if isinstance(child, dict):
            problems += _child_plan_problems(step.id, child, plugins)
    return problems


def _child_plan_problems(
    step_id: str, child: dict[str, Any], plugins: Mapping[str, type[BaseModel]] | None
) -> list[dict[str, str]]:
    """A sub_execution's plan, checked as any plan (its problems named under the step)."""
    try:
        plan = Plan.model_validate(child)
    except ValidationError as exc:
        return [{"step_id": step_id, "problem": f"config.plan: {e['msg']} at "
                 + ".".join(str(p) for p in e["loc"])} for e in exc.errors()]  # fmt: skip
    return [{"step_id": step_id, "problem": f"config.plan: step {p['step_id']}: {p['problem']}"}
            for p in validate_plan(plan, plugins)]  # fmt: skip


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def _template_refs(config: dict[str, Any]) -> set[str]:
    return {m.group(1) for s in _strings(config) for m in _TEMPLATE.finditer(s)}


def _step_refs(config: dict[str, Any]) -> set[str]:
    return {m.group(2) for s in _strings(config) for m in _TEMPLATE.finditer(s)
            if m.group(1) == "steps" and m.group(2)}  # fmt: skip


def _unreachable(plan: Plan) -> list[dict[str, str]]:
    """With a `start` step, every other step must (transitively) depend on it."""
    starts = [s.id for s in plan.steps if canonical_type(s.type) == "start"]
    if not starts:
        return []
    deps = {s.id: set(s.depends_on) for s in plan.steps}
    branch_of: dict[str, set[str]] = {}
    for s in plan.steps:
        for key in _STEP_LISTS.get(canonical_type(s.type), ()):
            for ref in s.config.get(key) or ():
                branch_of.setdefault(ref, set()).add(s.id)
    reached = set(starts)
    changed = True
    while changed:
        changed = False
        for sid in deps:
            if sid not in reached and (deps[sid] | branch_of.get(sid, set())) & reached:
                reached.add(sid)
                changed = True
    return [{"step_id": sid, "problem": "unreachable from the start step"}
            for sid in deps if sid not in reached]  # fmt: skip


def validate_inputs(
    plan: Plan | None, inputs: dict[str, Any], environment: str | None,
    timeout_sec: float | None,
) -> list[dict[str, str]]:
    """Required inputs from every step's inputsSpec, their types, environment, timeoutSec."""
    problems: list[dict[str, str]] = []
    if environment not in ENVIRONMENTS:
        problems.append({"field": "environment",
                         "problem": f"must be one of {', '.join(ENVIRONMENTS)}"})
    if timeout_sec is not None and not TIMEOUT_MIN <= timeout_sec <= TIMEOUT_MAX:
        problems.append({"field": "timeoutSec",
                         "problem": f"must be between {TIMEOUT_MIN} and {TIMEOUT_MAX}"})
    seen: set[str] = set()
    for step in plan.steps if plan else ():
        for name, kind in step.inputs_spec.items():
            if name in seen:
                continue
            seen.add(name)
            spec = str(kind).rstrip("?")
            optional = str(kind).endswith("?")
            if spec not in INPUT_TYPES:
                problems.append({"field": f"inputsSpec.{name}", "step_id": step.id,
                                 "problem": f"unknown input type {kind!r}"})
            elif name not in inputs:
                if not optional:
                    problems.append({"field": f"inputs.{name}", "step_id": step.id,
                                     "problem": f"required ({spec})"})
            elif not _is_type(inputs[name], spec):
                problems.append({"field": f"inputs.{name}", "step_id": step.id,
                                 "problem": f"must be {spec}"})
    return problems


def _is_type(value: Any, spec: str) -> bool:
    if spec == "string":
        return isinstance(value, str)
    if spec == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if spec == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if spec == "boolean":
        return isinstance(value, bool)
    if spec == "object":
        return isinstance(value, dict)
    if spec == "array":
        return isinstance(value, list)
    try:
        date.fromisoformat(str(value)[:10])
        return isinstance(value, str)
    except ValueError:
        return False
