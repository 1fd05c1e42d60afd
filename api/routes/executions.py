"""Executions: start, read, history, logs, stop, and finishing a tracked one by hand."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from api.accept import accept, is_new
from api.control import entry_for, submit
from api.deps import AppContext, Ctx, IdempotencyKey, command_id_for, digest, new_id, now_ms
from api.envelope import ApiError, not_found, ok
from api.history import merged_history
from api.models import FinishRequest, StartRequest, StopRequest
from api.routes.plans import check_inputs, prepared_plan
from projections import queries
from streams.contracts import FinishExecution, StartExecution, StopExecution
from streams.executors.masking import mask_event

router = APIRouter(prefix="/api/v1", tags=["executions"])
QUEUE_FULL_RETRY_AFTER = 5  # seconds
ExecId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:\-]+$")]
Tenant = Annotated[str, Query(min_length=1, max_length=100)]


@router.post("/executions", status_code=202)
async def start_execution(body: StartRequest, ctx: Ctx, idempotency_key: IdempotencyKey = None):
    """Start an execution (202). The same id or Idempotency-Key again creates nothing new.
    A sub_execution step may name a saved workflow (``workflow_id``, ``version``): its plan
    is fixed when the execution starts."""
    return ok(await start(ctx, body, idempotency_key), 202)


async def start(
    ctx: AppContext, body: StartRequest, idempotency_key: str | None = None
) -> dict[str, Any]:
    """Check, journal and append a start; what the 202 answers."""
    # Nothing is journaled or appended for an invalid plan or invalid inputs.
    if body.plan is not None:
        body = body.model_copy(update={"plan": await prepared_plan(ctx, body.tenant,
                                                                   body.plan)})  # fmt: skip
    check_inputs(body.plan, body.inputs, body.environment, body.timeout_sec)
    queued = body.mode == "orchestrated" and ctx.limits.enabled
    if queued and len(ctx.queue) >= ctx.limits.max_queued:
        raise ApiError(429, "queue_full", f"{len(ctx.queue):,} executions wait for a running "
                       f"slot (max_queued {ctx.limits.max_queued:,}): retry later",
                       headers={"Retry-After": str(QUEUE_FULL_RETRY_AFTER)})  # fmt: skip
    await ctx.hooks.before_execution(body.workflow_id, body.inputs)
    if body.execution_id:
        eid = body.execution_id
    elif idempotency_key:
        eid = f"exec_{digest(body.tenant, 'execution', idempotency_key)}"
    else:
        eid = new_id("exec")
        is_new(ctx, eid)
    cmd = StartExecution(
        execution_id=eid, tenant=body.tenant, received_at=now_ms(),
        command_id=command_id_for(body.tenant, f"start:{eid}", idempotency_key),
        mode=body.mode, plan=body.plan, inputs=body.inputs, environment=body.environment,
        labels=body.labels, workflow_id=body.workflow_id, system=body.system, module=body.module,
        timeout_sec=body.timeout_sec, debug=body.debug, queued=queued, priority=body.priority,
    )  # fmt: skip
    await accept(ctx, [entry_for(ctx, "start", cmd)])
    if queued:
        ctx.queue.accepted(eid)
    return {"execution_id": eid, "command_id": cmd.command_id, "status": "pending"}


async def detail_or_pending(ctx: AppContext, eid: str, tenant: str) -> dict[str, Any]:
    detail = await queries.execution_detail(ctx.ch, eid, tenant, database=ctx.db)
    if detail is not None:
        return {**detail, "projected": True}
    recent = ctx.tail.recent_after(eid, 0)
    if ctx.accepted.get(eid) == tenant or (recent and recent[0].get("tenant") == tenant):
        return {"execution_id": eid, "status": "pending", "progress": 0.0, "projected": False}
    raise not_found("execution", eid)


@router.get("/executions/{execution_id}")
async def get_execution(execution_id: ExecId, ctx: Ctx, tenant: Tenant = "default"):
    """Status, progress, current and blocked steps, timings (pending until projected)."""
    return ok(await detail_or_pending(ctx, execution_id, tenant))


@router.get("/executions/{execution_id}/events")
async def get_events(
    execution_id: ExecId, ctx: Ctx, tenant: Tenant = "default",
    after_seq: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
):  # fmt: skip
    """The execution's events in seq order (gapless), after `after_seq`; data and labels
    masked as everywhere on the read side."""
    await detail_or_pending(ctx, execution_id, tenant)
    masker = ctx.masker()
    items = [mask_event(e, masker)
             for e in (await merged_history(ctx, execution_id, after_seq, tenant))[:limit]]
    more = len(items) == limit
    return ok({"items": items, "next_cursor": str(items[-1]["seq"]) if more else None})


@router.get("/executions/{execution_id}/logs")
async def get_logs(
    execution_id: ExecId, ctx: Ctx, tenant: Tenant = "default",
    level: Literal["info", "warn", "warning", "error"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
):  # fmt: skip
    """Log lines (`log` events), optionally one level; `warning` means `warn`."""
    await detail_or_pending(ctx, execution_id, tenant)
    lvl = "warn" if level == "warning" else level
    items = await queries.execution_logs(ctx.ch, execution_id, lvl, limit, tenant,
                                         mask=ctx.masker(), database=ctx.db)
    return ok({"items": items, "next_cursor": None})


@router.post("/executions/{execution_id}/finish")
async def finish_execution(
    execution_id: ExecId, body: FinishRequest, ctx: Ctx, tenant: Tenant = "default",
    idempotency_key: IdempotencyKey = None,
):  # fmt: skip
    """End a tracked execution by hand: 200 with the new status, 409, or 202 past the wait."""
    await detail_or_pending(ctx, execution_id, tenant)
    cmd = FinishExecution(
        execution_id=execution_id, tenant=tenant, received_at=now_ms(),
        command_id=command_id_for(tenant, f"finish:{execution_id}", idempotency_key),
        status=body.status, message=body.message,
    )  # fmt: skip
    answer, status = await submit(ctx, "finish", cmd)
    return ok(answer, status)


@router.post("/executions/{execution_id}/stop")
async def stop_execution(
    execution_id: ExecId, ctx: Ctx, body: StopRequest | None = None, tenant: Tenant = "default",
    idempotency_key: IdempotencyKey = None,
):  # fmt: skip
    """Stop an execution: nothing more starts, steps in flight are abandoned; the detail's
    `stopped_at_steps` names them. 200 with the new status, 409, or 202 past the wait."""
    await detail_or_pending(ctx, execution_id, tenant)
    cmd = StopExecution(
        execution_id=execution_id, tenant=tenant, received_at=now_ms(),
        command_id=command_id_for(tenant, f"stop:{execution_id}", idempotency_key),
        reason=body.reason if body else "",
    )  # fmt: skip
    answer, status = await submit(ctx, "stop", cmd)
    return ok(answer, status)
