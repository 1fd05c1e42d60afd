"""Plan and input checks before anything runs (seed 000's plan → inputs → execute flow)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api import workflows as wf
from api.deps import AppContext, Ctx
from api.envelope import ApiError, ok
from api.models import InputsBody, PlanBody
from api.step_types import known_types, with_endpoints
from api.workflow_models import GenerateBody
from streams.plan import Plan
from streams.validation import validate_inputs, validate_plan

router = APIRouter(prefix="/api/v1", tags=["plans"])
Tenant = Annotated[str, Query(min_length=1, max_length=100)]


async def prepared_plan(ctx: AppContext, tenant: str, plan: Plan) -> Plan:
    """``plan`` as it will run: the saved workflows its sub_execution steps name resolved,
    checked against every step type (422 naming every problem and the step it concerns),
    and the steps of HTTP-registered types given their endpoints."""
    plan = await wf.resolve_children(ctx, tenant, plan)
    problems = validate_plan(plan, await known_types(ctx, tenant))
    if problems:
        raise ApiError(422, "invalid_plan", f"{len(problems)} problem(s) in the plan: "
                       + "; ".join(f"{p['step_id']}: {p['problem']}" for p in problems[:5]),
                       details=problems)  # fmt: skip
    return await with_endpoints(ctx, tenant, plan)


@router.post("/plans/validate")
async def validate_plan_route(body: PlanBody, ctx: Ctx, tenant: Tenant = "default"):
    """Structure, dependencies, step types, config and template references (and the saved
    workflows that sub_execution steps name)."""
    await prepared_plan(ctx, tenant, body.plan)
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
                             name=doc.get("name") if doc else None)  # fmt: skip
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
    (dev/test/stage/prod) and timeoutSec (30..86,400 s), every problem at once."""
    check_inputs(body.plan, body.inputs, body.environment, body.timeout_sec)
    return ok({"valid": True})
