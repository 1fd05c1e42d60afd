"""Statistics over any selection, per workflow, system and module, and the realtime
figures."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import Ctx
from api.envelope import ok
from api.filters import QueryFilters
from projections import realtime, stats

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])
IntervalQuery = Annotated[stats.Interval | None, Query()]
WorkflowId = Annotated[str, Path(min_length=1, max_length=200)]


# The path parameter is not named `workflow_id`: that is the filters' query parameter.
@router.get("/workflows/{workflow}")
async def workflow_stats(workflow: WorkflowId, f: QueryFilters, ctx: Ctx,
                         interval: IntervalQuery = None):  # fmt: skip
    """Runs, success rate, duration percentiles, slowest steps, bottlenecks, queue wait,
    errors by type; a time series with ``interval`` (minute, hour, day)."""
    return ok(await stats.workflow_stats(ctx.ch, workflow, f, interval=interval,
                                         database=ctx.db))  # fmt: skip


@router.get("/executions")
async def execution_stats(f: QueryFilters, ctx: Ctx, interval: IntervalQuery = None):
    """The workflow figures over every finished execution the filters select, whatever
    its workflow (the Execution Center's charts for any selection)."""
    return ok(await stats.execution_stats(ctx.ch, f, interval=interval, database=ctx.db))


@router.get("/systems")
async def system_stats(f: QueryFilters, ctx: Ctx, interval: IntervalQuery = None):
    """The workflow figures per system the executions' steps touched."""
    return ok(await stats.group_stats(ctx.ch, "system", f, interval=interval, database=ctx.db))


@router.get("/modules")
async def module_stats(f: QueryFilters, ctx: Ctx, interval: IntervalQuery = None):
    """The workflow figures per module the executions' steps touched."""
    return ok(await stats.group_stats(ctx.ch, "module", f, interval=interval, database=ctx.db))


@router.get("/realtime")
async def realtime_stats(f: QueryFilters, ctx: Ctx):
    """Active executions, executions started per minute (last hour), step events/s (last
    minute), error rate (last 5 min), and the projector's lag behind the events topic
    (null when no projector runs in this process: the ClickHouse-server layout)."""
    data = await realtime.realtime_stats(ctx.ch, f, database=ctx.db)
    data["projector_lag"] = ctx.projector.lag() if ctx.projector is not None else None
    data["queue"]["length"] = len(ctx.queue)  # this process's view (what 429s are read from)
    data["generation"] = ctx.generation.public() if ctx.generation is not None else None
    return ok(data)
