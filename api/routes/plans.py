"""Plan and input checks before anything runs (seed 000's plan → inputs → execute flow)."""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api import workflows as wf
from api.deps import Ctx
from api.envelope import ApiError, ok
from api.models import InputsBody, PlanBody
from api.workflow_models import GenerateBody
from streams.executors.registry import load_executors
from streams.plan import Plan
from streams.validation import validate_inputs, validate_plan

router = APIRouter(prefix="/api/v1", tags=["plans"])
Tenant = Annotated[str, Query(min_length=1, max_length=100)]


@functools.cache
def plugin_step_types() -> dict[str, type[BaseModel]]:
    """Step types that step executors declare as entry points, with their config models
    (read once per process: installing a plugin means restarting)."""
    return {name: ex.config_model for name, ex in load_executors().items()}


def check_plan(plan: Plan) -> None:
    """422 naming every problem and the step it concerns."""
    problems = validate_plan(plan, plugin_step_types())
    if problems:
        raise ApiError(422, "invalid_plan", f"{len(problems)} problem(s) in the plan: "
                       + "; ".join(f"{p['step_id']}: {p['problem']}" for p in problems[:5]),
                       details=problems)  # fmt: skip


@router.post("/plans/validate")
async def validate_plan_route(body: PlanBody, ctx: Ctx, tenant: Tenant = "default"):
    """Structure, dependencies, step types, config and template references (and the saved
    workflows that sub_execution steps name)."""
    check_plan(await wf.resolve_children(ctx, tenant, body.plan))
    return ok({"valid": True})


@router.post("/plans/generate")
async def generate_plan_route(body: GenerateBody, ctx: Ctx):
    """The plan (a DAG of steps) of a saved workflow (its current version, or `version`)
    or of an inline `definition` (nodes + connections, or steps): the same input gives the
    same plan. `estimated_duration_ms` is the average of the workflow's runs in the last
    30 days (null without runs). 422 names every problem and its node."""
    doc = None
    if body.workflow_id is not None:
        doc = await wf.load(ctx, body.tenant, body.workflow_id, body.version)
        definition = wf.definition_of(doc)
    else:
        assert body.definition is not None  # GenerateBody wants one of the two
        definition = body.definition
    plan = await wf.generate(ctx, body.tenant, definition, workflow_id=body.workflow_id,
                             name=doc.get("name") if doc else None,
                             plugins=plugin_step_types())  # fmt: skip
    return ok({"plan": plan.model_dump(mode="json", by_alias=True),
               "estimated_duration_ms": plan.estimated_duration_ms,
               "workflow_id": body.workflow_id, "version": doc["version"] if doc else None})


def check_inputs(
    plan: Plan | None, inputs: dict[str, Any], environment: str | None, timeout_sec: float | None
) -> None:
    """422 naming every bad input field at once."""
    problems = validate_inputs(plan, inputs, environment, timeout_sec)
    if problems:
        raise ApiError(422, "invalid_inputs", f"{len(problems)} problem(s) in the inputs: "
                       + ", ".join(p["field"] for p in problems[:10]), details=problems)


@router.post("/executions/validate-inputs")
async def validate_inputs_route(body: InputsBody):
    """Required inputs and their types (from every step's inputsSpec), environment
    (dev/test/stage/prod) and timeoutSec (30..300), every problem at once."""
    check_inputs(body.plan, body.inputs, body.environment, body.timeout_sec)
    return ok({"valid": True})
