"""Steering an orchestrated execution: pause, resume, retry, rerun, debug step, input;
and any command's outcome by id. Each answers with the worker's verdict (api/control)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.control import submit
from api.deps import AppContext, Ctx, IdempotencyKey, command_id_for, now_ms
from api.envelope import not_found, ok
from api.models import InputRequest, RerunRequest
from api.routes.executions import ExecId, Tenant, detail_or_pending
from projections.commands import command_outcome
from streams.contracts import ControlAction, ControlCommand

router = APIRouter(prefix="/api/v1", tags=["control"])


async def _steer(
    ctx: AppContext, eid: str, tenant: str, action: ControlAction, key: str | None,
    **fields: object,
) -> object:  # fmt: skip
    await detail_or_pending(ctx, eid, tenant)  # 404 for an unknown execution
    cmd = ControlCommand(
        execution_id=eid, tenant=tenant, received_at=now_ms(), action=action,
        command_id=command_id_for(tenant, f"{action}:{eid}", key), **fields,  # type: ignore[arg-type]
    )  # fmt: skip
    body, status = await submit(ctx, action, cmd)
    return ok(body, status)


@router.post("/executions/{execution_id}/pause")
async def pause(execution_id: ExecId, ctx: Ctx, tenant: Tenant = "default",
                idempotency_key: IdempotencyKey = None):  # fmt: skip
    """No new step starts; running ones finish and are recorded (running executions)."""
    return await _steer(ctx, execution_id, tenant, "pause", idempotency_key)


@router.post("/executions/{execution_id}/resume")
async def resume(execution_id: ExecId, ctx: Ctx, tenant: Tenant = "default",
                 idempotency_key: IdempotencyKey = None):  # fmt: skip
    """Continue a paused execution (and leave debug mode)."""
    return await _steer(ctx, execution_id, tenant, "resume", idempotency_key)


@router.post("/executions/{execution_id}/retry")
async def retry(execution_id: ExecId, ctx: Ctx, tenant: Tenant = "default",
                idempotency_key: IdempotencyKey = None):  # fmt: skip
    """Re-run only the failed steps of a failed execution (and what waits on them)."""
    return await _steer(ctx, execution_id, tenant, "retry", idempotency_key)


@router.post("/executions/{execution_id}/rerun")
async def rerun(execution_id: ExecId, body: RerunRequest, ctx: Ctx, tenant: Tenant = "default",
                idempotency_key: IdempotencyKey = None):  # fmt: skip
    """A finished execution again from `from_step` (and everything after it), with the
    given `inputs` merged over the old ones; earlier steps keep their outputs."""
    return await _steer(ctx, execution_id, tenant, "rerun", idempotency_key,
                        step_id=body.from_step, inputs=body.inputs)


@router.post("/executions/{execution_id}/step")
async def debug_step(execution_id: ExecId, ctx: Ctx, tenant: Tenant = "default",
                     idempotency_key: IdempotencyKey = None):  # fmt: skip
    """Debug mode: run the next ready step, then pause again."""
    return await _steer(ctx, execution_id, tenant, "step", idempotency_key)


@router.post("/executions/{execution_id}/input")
async def give_input(
    execution_id: ExecId, body: InputRequest, ctx: Ctx, tenant: Tenant = "default",
    idempotency_key: IdempotencyKey = None,
):  # fmt: skip
    """Answer a `wait_input` step: 422 naming the fields its input_schema refuses, 409 if
    the step is not waiting (a late or unexpected answer)."""
    return await _steer(ctx, execution_id, tenant, "input", idempotency_key,
                        step_id=body.step_id, data=body.data)


@router.get("/commands/{command_id}")
async def get_command(
    command_id: Annotated[str, Path(min_length=1, max_length=200)], ctx: Ctx,
    tenant: Annotated[str, Query(min_length=1, max_length=100)] = "default",
):  # fmt: skip
    """A command's outcome: `pending` until the worker's verdict is projected, then
    `applied` (with the event it caused) or `rejected` (with the reason)."""
    outcome = await command_outcome(ctx.ch, command_id, tenant, database=ctx.db)
    if outcome is None:
        raise not_found("command", command_id)
    return ok(outcome)
