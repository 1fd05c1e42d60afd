"""Streamed exports (`POST /tracking/export`) and their progress (`GET /exports/{id}`)."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, field_validator

from api.deps import Ctx
from api.envelope import not_found, ok
from projections import export_status as export_log
from projections.export import CONTENT_TYPES, Format, Kind, export_stream
from projections.filters import Filters

router = APIRouter(prefix="/api/v1", tags=["export"])
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_WHEN = TypeAdapter(datetime)
PROGRESS_EVERY_S = 2.0  # how often a long export's progress is written for other replicas
MaskName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


def _ms(value: Any) -> int:
    when = _WHEN.validate_python(value)
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() * 1000)


class ExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Format
    kind: Kind = "records"
    filters: Filters = Field(default_factory=Filters)
    mask: list[MaskName] = Field(default_factory=list, max_length=100)

    @field_validator("filters", mode="before")
    @classmethod
    def _from_to(cls, value: Any) -> Any:
        """Accept the query API's `from` / `to` (ISO times) beside `since_ms` / `until_ms`."""
        if not isinstance(value, dict) or not ({"from", "to"} & value.keys()):
            return value
        out = {k: v for k, v in value.items() if k not in ("from", "to")}
        for name, field in (("from", "since_ms"), ("to", "until_ms")):
            if name in value:
                try:
                    out[field] = _ms(value[name])
                except ValueError as exc:
                    raise ValueError(f"{name}: not a date-time") from exc
        return out


def file_name(kind: str, label: str, fmt: str) -> str:
    safe = _UNSAFE.sub("_", label).strip("._-")[:100] or "all"
    return f"runledger-{kind}-{safe}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.{fmt}"


@router.post("/tracking/export")
async def export(body: ExportRequest, ctx: Ctx) -> StreamingResponse:
    """The selection as a file, streamed (constant memory), sensitive values masked."""
    status = ctx.exports.start(body.kind, body.format, body.filters.tenant)
    await export_log.save(ctx.ch, ctx.db, status)
    chunks = export_stream(ctx.ch, ctx.db, kind=body.kind, fmt=body.format,
                           filters=body.filters, masker=ctx.masker(body.mask),
                           status=status)  # fmt: skip
    # Read up to the first page before answering, so a failing query is an error response
    # rather than a truncated 200.
    first = [await anext(chunks)]
    try:
        first.append(await anext(chunks))
    except StopAsyncIteration:
        pass

    async def body_bytes() -> AsyncIterator[bytes]:
        saved = time.monotonic()
        try:
            for chunk in first:
                yield chunk
            async for chunk in chunks:
                yield chunk
                if time.monotonic() - saved >= PROGRESS_EVERY_S:
                    await export_log.save(ctx.ch, ctx.db, status)
                    saved = time.monotonic()
        finally:
            with contextlib.suppress(Exception):  # the client may be gone; the row is a help
                await export_log.save(ctx.ch, ctx.db, status)

    name = file_name(body.kind, body.filters.label(), body.format)
    headers = {"Content-Disposition": f'attachment; filename="{name}"',
               "X-Export-Id": status.export_id}  # fmt: skip
    return StreamingResponse(body_bytes(), media_type=CONTENT_TYPES[body.format],
                             headers=headers)  # fmt: skip


@router.get("/exports/{export_id}")
async def export_status(export_id: Annotated[str, Path(max_length=100)], ctx: Ctx):
    """Rows written so far, whether it finished, and the error if it failed (whichever
    API replica streams it)."""
    status = ctx.exports.get(export_id) or await export_log.load(ctx.ch, ctx.db, export_id)
    if status is None:
        raise not_found("export", export_id)
    return ok(status.as_dict())
