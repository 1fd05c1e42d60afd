"""Tracking summary and per-step-attempt records (read from ClickHouse)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import Ctx
from api.envelope import ok
from projections import tracking

router = APIRouter(prefix="/api/v1/tracking", tags=["tracking"])
ExecQuery = Annotated[str, Query(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:\-]+$")]


@router.get("/summary")
async def tracking_summary(execution_id: ExecQuery, ctx: Ctx):
    """Systems, modules, plans, cross-system ratio, average duration, failed steps."""
    return ok(await tracking.tracking_summary(ctx.ch, execution_id, database=ctx.db))


@router.get("/records")
async def tracking_records(
    execution_id: ExecQuery, ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
):  # fmt: skip
    """One record per step attempt that started."""
    return ok(await tracking.tracking_records(ctx.ch, execution_id, limit, cursor,
                                              database=ctx.db))
