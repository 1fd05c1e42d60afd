"""Data protection: `POST /purge` deletes executions' data everywhere ClickHouse holds it
(admin, journaled, a dry run unless `dry_run` is false), and per-tenant retention
(`GET/PUT /admin/retention`, journaled, applied as table TTLs; `POST
/admin/retention/enforce` deletes what is past its time now)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.accept import accept
from api.deps import AppContext, Ctx, new_id, now_ms
from api.envelope import ApiError, ok
from api.routes.bulk import BulkFilter, Tenant, filters_of
from projections import bulk, purge, queries
from projections.journal import Entry, latest_payload
from projections.purge import Retention

router = APIRouter(prefix="/api/v1", tags=["data protection"])
MAX_PURGE = 10_000
RETENTION_ACTION = "retention.set"


class PurgeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filter: BulkFilter
    dry_run: bool = True  # say false to delete
    reason: str = Field(default="", max_length=2000)


@router.post("/purge")
async def purge_executions(body: PurgeRequest, ctx: Ctx, tenant: Tenant = "default"):
    """Delete the finished executions the filter selects from every table (events,
    executions, step records, the journal's commands and reports, dead letters). A dry
    run (the default) only counts them. Unfinished ones are left: stop them first."""
    if not body.filter.model_fields_set:
        raise ApiError(422, "invalid_filter", "a purge needs a filter (execution_id, "
                       "workflow_id, from/to, …)", details=[{"field": "filter",
                                                            "problem": "empty"}])  # fmt: skip
    ids = await bulk.matching_ids(ctx.ch, filters_of(body.filter, tenant), MAX_PURGE + 1,
                                  database=ctx.db)  # fmt: skip
    if len(ids) > MAX_PURGE:
        raise ApiError(422, "too_many_executions", f"the filter selects more than "
                       f"{MAX_PURGE:,} executions: narrow it", details=[
                           {"field": "filter", "problem": "selects too many"}])  # fmt: skip
    finished = await queries.load_states(ctx.ch, set(ids), finished_only=True, database=ctx.db)
    chosen = [i for i in ids if i in finished]
    unfinished = [i for i in ids if i not in finished]
    answer: dict[str, Any] = {"dry_run": body.dry_run, "executions": len(chosen),
                              "execution_ids": chosen[:100], "unfinished": unfinished[:100]}
    if body.dry_run or not chosen:
        return ok(answer)
    purge_id, at = new_id("purge"), now_ms()
    record = {"purge_id": purge_id, "filter": body.filter.model_dump(
        mode="json", by_alias=True, exclude_none=True), "execution_ids": chosen,
        "reason": body.reason}  # fmt: skip
    await accept(ctx, [Entry(action="purge", execution_id=purge_id, ids=(), topic="",
                             payload=orjson.dumps(record), received_at=at, tenant=tenant)])
    await purge.purge(ctx.ch, ctx.db, tenant, chosen)
    for eid in chosen:  # nor does this process remember them as accepted or recent
        ctx.accepted.pop(eid, None)
        ctx.tail.recent.pop(eid, None)
    return ok({**answer, "purge_id": purge_id, "purged": len(chosen)})


async def load_retention(ctx: AppContext) -> Retention | None:
    """The newest retention set through the API (re-applied at start: a projection
    rebuild makes the derived tables anew)."""
    raw = await latest_payload(ctx.ch, ctx.db, RETENTION_ACTION)
    return Retention.model_validate_json(raw) if raw else None


@router.get("/admin/retention")
async def get_retention(ctx: Ctx):
    """Days each tenant's events, records (executions, step records) and journal are
    kept; `null` is for ever."""
    policy = await load_retention(ctx) or Retention()
    return ok(policy.model_dump(mode="json"))


@router.put("/admin/retention")
async def put_retention(body: Retention, ctx: Ctx):
    """Set the retention (journaled) and apply it as table TTLs; ClickHouse deletes what is
    past its time in its own merges, or now with `POST /admin/retention/enforce`."""
    bad = body.check_names()
    if bad:
        raise ApiError(422, "invalid_retention", "tenant names are letters, digits and _.:-",
                       details=[{"field": f"tenants.{t}", "problem": "bad name"} for t in bad])
    try:
        clauses = await purge.apply_retention(ctx.ch, ctx.db, body)
    except Exception as exc:  # ClickHouse refused a TTL: the one in force goes back
        await purge.apply_retention(ctx.ch, ctx.db, await load_retention(ctx) or Retention())
        raise ApiError(422, "invalid_retention", f"ClickHouse refused it: {exc}"[:500]) from exc
    await accept(ctx, [Entry(action=RETENTION_ACTION, execution_id="retention", ids=(),
                             topic="", payload=body.model_dump_json().encode(),
                             received_at=now_ms())])  # fmt: skip
    return ok({**body.model_dump(mode="json"), "ttl": clauses})


@router.post("/admin/retention/enforce")
async def enforce(ctx: Ctx):
    """Delete now every row the retention says is past its time."""
    await purge.enforce_retention(ctx.ch, ctx.db)
    return ok({"enforced": True})
