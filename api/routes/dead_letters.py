"""Dead letters: list what the worker could not decode or apply, and redrive one.

`GET /api/v1/dead-letters` (newest first, optional `execution_id`, cursor paging) and
`GET /api/v1/dead-letters/{id}` read the archive (``projections.dead_letters``);
`POST /api/v1/dead-letters/{id}/redrive` appends the original bytes again to the topic
they were read from, after a fix (202: the worker takes it from there; one that fails
again shows up as a new dead letter). A redrive is accepted like any command: journaled
first (the audit log shows it as action ``redrive`` naming the dead letter), with the
archived state in front of it when its execution has left the worker.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.accept import accept
from api.deps import Ctx, now_ms
from api.envelope import not_found, ok
from api.routes.search import Cursor, bad_cursor
from projections import dead_letters
from projections.journal import Entry

router = APIRouter(prefix="/api/v1/dead-letters", tags=["dead letters"])
DeadLetterId = Annotated[str, Path(pattern=r"^dl_[0-9a-f]{16}$")]


@router.get("")
async def list_dead_letters(
    ctx: Ctx, execution_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50, cursor: Cursor = None,
):  # fmt: skip
    """Dead letters newest first: reason, where it was read, the message (secrets masked)."""
    try:
        return ok(await dead_letters.listing(ctx.ch, ctx.db, ctx.masker(),
                                             execution_id=execution_id, limit=limit,
                                             cursor=cursor))  # fmt: skip
    except ValueError as exc:
        raise bad_cursor() from exc


@router.get("/{dead_letter_id}")
async def get_dead_letter(dead_letter_id: DeadLetterId, ctx: Ctx):
    row = await dead_letters.get(ctx.ch, ctx.db, dead_letter_id)
    if row is None:
        raise not_found("dead_letter", dead_letter_id)
    return ok(dead_letters.view(row, ctx.masker()))


@router.post("/{dead_letter_id}/redrive", status_code=202)
async def redrive(dead_letter_id: DeadLetterId, ctx: Ctx):
    """Append the original message again to its topic (today's generation)."""
    row = await dead_letters.get(ctx.ch, ctx.db, dead_letter_id)
    if row is None:
        raise not_found("dead_letter", dead_letter_id)
    at = now_ms()
    await accept(ctx, [Entry(action="redrive", execution_id=row["execution_id"],
                             ids=(dead_letter_id,), topic=row["topic"],
                             payload=dead_letters.original_bytes(row), received_at=at)])
    after, newer = dead_letters.redrive_row(row, at)
    await dead_letters.insert(ctx.ch, ctx.db, [newer])
    return ok(dead_letters.view(after, ctx.masker()), 202)
