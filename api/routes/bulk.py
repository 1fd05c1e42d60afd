"""Bulk control: pause, resume, stop or retry every execution a filter selects.

The bulk operation and one ordinary command per execution are journaled in one insert and
appended like single commands, so the operation survives a restart as they do (restore
re-appends what no event answered); its progress is read from the commands' verdicts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.accept import accept
from api.control import entry_for, rejection_status
from api.deps import Ctx, digest, new_id, now_ms
from api.envelope import ApiError, not_found, ok
from api.filters import ms_of_datetime
from projections import bulk
from projections.filters import ExecutionStatus, Filters
from projections.journal import Entry
from streams.contracts import ControlCommand, StopExecution
from streams.times import iso_ms

router = APIRouter(prefix="/api/v1", tags=["control"])
Tenant = Annotated[str, Query(min_length=1, max_length=100)]
MAX_EXECUTIONS = 50_000
_FAILURES_SHOWN = 1_000
_Id = Field(default=None, min_length=1, max_length=200)


class BulkFilter(BaseModel):
    """The filters of `GET /executions` (search)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    execution_id: str | None = _Id
    workflow_id: str | None = _Id
    system: str | None = _Id
    module: str | None = _Id
    status: ExecutionStatus | None = None
    environment: str | None = Field(default=None, min_length=1, max_length=50)
    step_id: str | None = _Id
    error_type: str | None = _Id
    from_: datetime | None = Field(default=None, alias="from")
    to: datetime | None = None


class BulkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["pause", "resume", "stop", "retry"]
    filter: BulkFilter = Field(default_factory=BulkFilter)
    dry_run: bool = False
    reason: str = Field(default="", max_length=2000)  # a stop's reason


def filters_of(flt: BulkFilter, tenant: str) -> Filters:
    """The search filters a bulk operation (or a purge) selects its executions by."""
    fields = flt.model_dump(exclude={"from_", "to"})
    try:
        return Filters(tenant=tenant, since_ms=ms_of_datetime(flt.from_),
                       until_ms=ms_of_datetime(flt.to), **fields)  # fmt: skip
    except ValidationError as exc:
        raise ApiError(422, "invalid_filters", "filter.from must not be after filter.to",
                       details=[{"field": "filter.from", "message": "after to"}]) from exc


def command_id(bulk_id: str, execution_id: str) -> str:
    return f"cmd_{digest(bulk_id, execution_id)}"


@router.post("/executions/bulk", status_code=202)
async def start_bulk(body: BulkRequest, ctx: Ctx, tenant: Tenant = "default"):
    """Send `action` to every execution the filter selects (at most 50,000): 202 with the
    bulk id whose progress `GET /bulk/{id}` shows; `dry_run` only counts them."""
    f = filters_of(body.filter, tenant)
    ids = await bulk.matching_ids(ctx.ch, f, MAX_EXECUTIONS + 1, database=ctx.db)
    if len(ids) > MAX_EXECUTIONS:
        raise ApiError(422, "too_many_executions", f"the filter selects more than "
                       f"{MAX_EXECUTIONS:,} executions: narrow it (status, workflow_id, from/to)",
                       details=[{"field": "filter", "message": "selects too many"}])
    if body.dry_run:
        return ok({"dry_run": True, "action": body.action, "total": len(ids),
                   "execution_ids": ids[:100]})  # fmt: skip
    bulk_id, at = new_id("bulk"), now_ms()
    record = {"bulk_id": bulk_id, "action": body.action, "total": len(ids), "created_at": at,
              "filter": body.filter.model_dump(mode="json", by_alias=True, exclude_none=True),
              "execution_ids": ids}  # fmt: skip
    entries = [Entry(action="bulk", execution_id=bulk_id, ids=(), topic="",
                     payload=orjson.dumps(record), received_at=at, tenant=tenant)]
    for eid in ids:
        cmd: StopExecution | ControlCommand
        if body.action == "stop":
            cmd = StopExecution(execution_id=eid, tenant=tenant, received_at=at,
                                command_id=command_id(bulk_id, eid), reason=body.reason)
        else:
            cmd = ControlCommand(execution_id=eid, tenant=tenant, received_at=at,
                                 command_id=command_id(bulk_id, eid), action=body.action)
        entries.append(entry_for(ctx, body.action, cmd))
    await accept(ctx, entries)
    return ok({"bulk_id": bulk_id, "action": body.action, "total": len(ids),
               "status": "running" if ids else "finished"}, 202)  # fmt: skip


@router.get("/bulk/{bulk_id}")
async def get_bulk(
    bulk_id: Annotated[str, Path(min_length=1, max_length=200)], ctx: Ctx,
    tenant: Tenant = "default",
):  # fmt: skip
    """Progress of a bulk operation: `done` (applied), `failed` (refused by the worker,
    each with the HTTP status and reason a single command would have got, e.g. 409 for a
    finished execution; the first 1,000 listed), `pending` (no verdict projected yet)."""
    record = await bulk.bulk_record(ctx.ch, bulk_id, tenant, database=ctx.db)
    if record is None:
        raise not_found("bulk operation", bulk_id)
    commands = {command_id(bulk_id, eid): eid for eid in record["execution_ids"]}
    seen = await bulk.verdicts(ctx.ch, commands, tenant, database=ctx.db)
    failures: list[dict[str, Any]] = []
    for cid, verdict in seen.items():
        if verdict["event_type"] == "command_rejected":
            reason = verdict["data"].get("reason", "rejected")
            failures.append({"execution_id": commands[cid], "command_id": cid,
                             "status": rejection_status(reason), "reason": reason,
                             "message": verdict["message"]})  # fmt: skip
    total, answered = int(record["total"]), len(seen)
    return ok({
        "bulk_id": bulk_id, "action": record["action"], "filter": record["filter"],
        "created_at": iso_ms(int(record["created_at"])), "total": total,
        "done": answered - len(failures), "failed": len(failures), "pending": total - answered,
        "progress": round(answered / total, 4) if total else 1.0,
        "status": "finished" if answered == total else "running",
        "failures": sorted(failures, key=lambda x: x["execution_id"])[:_FAILURES_SHOWN],
    })  # fmt: skip
