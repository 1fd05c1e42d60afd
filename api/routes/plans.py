"""Plan and input checks before anything runs (seed 000's plan → inputs → execute flow)."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from api.envelope import ApiError, ok
from api.models import InputsBody, PlanBody
from streams.executors.registry import load_executors
from streams.plan import Plan
from streams.validation import validate_inputs, validate_plan

router = APIRouter(prefix="/api/v1", tags=["plans"])


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
async def validate_plan_route(body: PlanBody):
    """Structure, dependencies, step types, config and template references."""
    check_plan(body.plan)
    return ok({"valid": True})


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
