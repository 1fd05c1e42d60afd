"""Admin operations that must run where ClickHouse is open (chDB: this process).

`POST /admin/projections/rebuild` starts a rebuild of the derived tables from `events`
(202; 409 while one runs); `GET` shows the latest one's progress (the CLI polls it).
While it runs the projector in this process is paused: it holds no batch half-written,
and what arrives meanwhile waits in Kafka and is projected onto the rebuilt tables after.
A projector in a process of its own (a ClickHouse server) cannot be paused from here, and
what it wrote during the rebuild would be lost from the new tables: that case is a 409
saying to stop it and rebuild with `--offline`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import APIRouter

from api.deps import AppContext, Ctx
from api.envelope import ApiError, not_found, ok
from projections.rebuild import RebuildRun, rebuild_projections

log = logging.getLogger("runledger.api")
router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


async def _rebuild(ctx: AppContext, run: RebuildRun) -> None:
    pause = ctx.projector.paused() if ctx.projector is not None else contextlib.nullcontext()
    try:
        async with pause:
            await rebuild_projections(ctx.ch, ctx.db, run)
    except asyncio.CancelledError:
        log.warning("projection rebuild %s cancelled; the old tables stay", run.rebuild_id)
        raise
    except Exception:
        log.exception("projection rebuild %s failed; the old tables stay", run.rebuild_id)


@router.post("/projections/rebuild", status_code=202)
async def start_rebuild(ctx: Ctx):
    """Rebuild executions, step_records and the views on them from events."""
    if ctx.projector is None:
        raise ApiError(409, "projector_elsewhere", "the projector runs in a process of its "
                       "own and cannot be paused from here: stop it (scale it to 0), run "
                       "`runledger projections rebuild --offline`, then start it again")
    if ctx.rebuild is not None and ctx.rebuild.running:
        raise ApiError(409, "rebuild_running", f"rebuild {ctx.rebuild.rebuild_id} is running",
                       details=[ctx.rebuild.as_dict()])  # fmt: skip
    run = RebuildRun.new()
    ctx.rebuild = run
    ctx.rebuild_task = asyncio.create_task(_rebuild(ctx, run), name="projection-rebuild")
    return ok(run.as_dict(), 202)


@router.get("/projections/rebuild")
async def rebuild_status(ctx: Ctx):
    """The latest rebuild: state, events folded of the total, executions, error."""
    if ctx.rebuild is None:
        raise not_found("rebuild", "latest")
    return ok(ctx.rebuild.as_dict())
