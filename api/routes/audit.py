"""`GET /api/v1/audit`: the journal as an audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import Ctx
from api.envelope import ApiError, ok
from projections.journal import audit_log

router = APIRouter(prefix="/api/v1", tags=["audit"])
Name = Annotated[str | None, Query(min_length=1, max_length=200)]


@router.get("/audit")
async def audit(
    ctx: Ctx,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: Annotated[datetime | None, Query()] = None,
    actor: Name = None, action: Name = None, execution_id: Name = None, tenant: Name = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,20}$")] = None,
):  # fmt: skip
    """Who did what and when (every accepted command and report batch), oldest first."""
    since = int(from_.timestamp() * 1000) if from_ else None
    until = int(to.timestamp() * 1000) if to else None
    if since is not None and until is not None and since > until:
        raise ApiError(422, "invalid_range", "from is after to",
                       details=[{"field": "from", "message": "must not be after to"}])
    items = await audit_log(ctx.ch, ctx.db, since_ms=since, until_ms=until, actor=actor,
                            action=action, execution_id=execution_id, tenant=tenant,
                            after_pos=int(cursor or 0), limit=limit)  # fmt: skip
    more = len(items) == limit
    return ok({"items": items, "next_cursor": str(items[-1]["journal_pos"]) if more else None})
