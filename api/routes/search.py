"""Execution search: newest first, every analytics filter, a stable cursor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import Ctx
from api.envelope import ApiError, ok
from api.filters import QueryFilters
from projections.search import search_executions

router = APIRouter(prefix="/api/v1", tags=["executions"])
Cursor = Annotated[str | None, Query(max_length=500)]


def bad_cursor() -> ApiError:
    return ApiError(422, "invalid_cursor", "invalid: cursor",
                    details=[{"field": "cursor", "message": "not a cursor this API made"}])


@router.get("/executions")
async def list_executions(
    f: QueryFilters, ctx: Ctx, limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Cursor = None,
):  # fmt: skip
    """Executions matching the filters, newest first: status, timings, step counts."""
    try:
        return ok(await search_executions(ctx.ch, f, limit, cursor, database=ctx.db))
    except ValueError as exc:
        raise bad_cursor() from exc
