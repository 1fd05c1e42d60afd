"""Tracking summary and per-step-attempt records (read from ClickHouse)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import Ctx
from api.envelope import ok
from api.filters import QueryFilters
from api.routes.search import Cursor, bad_cursor
from projections import tracking

router = APIRouter(prefix="/api/v1/tracking", tags=["tracking"])
StepStatus = Literal["running", "succeeded", "failed"]


@router.get("/summary")
async def tracking_summary(f: QueryFilters, ctx: Ctx):
    """Systems, modules, plans, cross-system ratio, average duration, failed steps, counts
    by status; one execution (``execution_id``) or any filter (default: the last 24 h)."""
    return ok(await tracking.tracking_summary(ctx.ch, filters=f, database=ctx.db))


@router.get("/records")
async def tracking_records(
    f: QueryFilters, ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Cursor = None,
    step_status: Annotated[StepStatus | None, Query()] = None,
):  # fmt: skip
    """One record per step attempt that started. ``status`` selects by the execution's
    status (as everywhere); ``step_status`` by the attempt's own."""
    try:
        return ok(await tracking.tracking_records(ctx.ch, limit=limit, cursor=cursor,
                                                  status=step_status, filters=f,
                                                  database=ctx.db))  # fmt: skip
    except ValueError as exc:
        raise bad_cursor() from exc
