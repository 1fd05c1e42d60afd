"""Limits: the admission queue's length and waits (`GET /queue`), and the limits in force,
changed at runtime (`GET/PUT /admin/limits`, journaled like every accepted command)."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from api import limits
from api.accept import accept
from api.deps import Ctx, now_ms
from api.envelope import ApiError, ok
from projections.journal import Entry
from streams.admission_contracts import ADMISSION_KEY
from streams.limits import Limits

router = APIRouter(prefix="/api/v1", tags=["limits"])
Tenant = Annotated[str | None, Query(min_length=1, max_length=100)]
_Caps = dict[str, Annotated[int, Field(ge=1)]]


class LimitsChange(BaseModel):
    """The limits to change; a field left out stays, ``null`` removes a cap."""

    model_config = ConfigDict(extra="forbid")

    max_running: int | None = Field(default=None, ge=1)
    tenants: _Caps | None = None
    workflows: _Caps | None = None
    systems: _Caps | None = None
    max_queued: int | None = Field(default=None, ge=0)
    # the edge (api/backpressure.py): each API process applies them itself
    max_body_bytes: int | None = Field(default=None, ge=1)
    rate_limit: float | None = Field(default=None, gt=0)
    rate_limit_burst: int | None = Field(default=None, ge=1)
    # step calls in flight per target system, in each executor (they read it here)
    system_concurrency: _Caps | None = None
    system_concurrency_default: int | None = Field(default=None, ge=1)


EDGE_FIELDS = ("max_body_bytes", "rate_limit", "rate_limit_burst")
EXECUTOR_FIELDS = {"system_concurrency": "systems", "system_concurrency_default": "default"}


def _view(ctx: Any) -> dict[str, Any]:
    caps = ctx.executor_caps
    return {"executions": ctx.limits.model_dump(mode="json"), "queued": len(ctx.queue),
            "edge": ctx.edge.model_dump(mode="json") if ctx.edge is not None else None,
            "executor_system_concurrency": caps.model_dump() if caps else None}


@router.get("/admin/limits")
async def get_limits(ctx: Ctx):
    """The limits in force: caps on running executions (global, per tenant, workflow and
    system), the queue's length limit, and how many wait now (this process's view)."""
    return ok(_view(ctx))


@router.put("/admin/limits")
async def put_limits(body: LimitsChange, ctx: Ctx):
    """Change the limits now (journaled; the admission queue applies them at once, and
    starts that find more than `max_queued` waiting get 429)."""
    given = body.model_fields_set
    changes = {k: getattr(body, k) for k in given
               if k not in EDGE_FIELDS and k not in EXECUTOR_FIELDS}  # fmt: skip
    edge = {k: getattr(body, k) for k in given if k in EDGE_FIELDS}
    executors = {EXECUTOR_FIELDS[k]: getattr(body, k) or ({} if k == "system_concurrency"
                                                          else None)
                 for k in given if k in EXECUTOR_FIELDS}  # fmt: skip
    if changes.get("max_queued", 0) is None:
        raise ApiError(422, "invalid_limits", "max_queued cannot be removed (give a number)",
                       details=[{"field": "max_queued", "problem": "not null"}])
    for key in ("tenants", "workflows", "systems"):
        if key in changes and changes[key] is None:
            changes[key] = {}
    new = Limits.model_validate({**ctx.limits.model_dump(), **changes})
    at = now_ms()
    entries = []
    if changes or not (edge or executors):
        entries.append(Entry(action=limits.ACTION, execution_id=ADMISSION_KEY, ids=(),
                             topic=ctx.settings.topic("commands"),
                             payload=limits.payload(new, at), received_at=at))  # fmt: skip
    if edge or executors:
        before = limits.process_doc(ctx)
        doc = {"edge": {**before["edge"], **edge}, "executors": {**before["executors"],
                                                                 **executors}}  # fmt: skip
        entries.append(Entry(action=limits.PROCESS_ACTION, execution_id=ADMISSION_KEY, ids=(),
                             topic="", payload=orjson.dumps(doc), received_at=at))
    await accept(ctx, entries)
    ctx.limits = new
    if edge or executors:
        limits.apply_process(ctx, doc)
    return ok(_view(ctx))


@router.get("/queue")
async def queue(ctx: Ctx, tenant: Tenant = None):
    """Executions waiting for a running slot: how many, the oldest wait, by tenant and by
    workflow (from ClickHouse: a start shows here once projected; `length` counts this
    process's view, which is what `max_queued` is checked against)."""
    now = int(time.time() * 1000)
    rows = await limits.queued_rows(ctx)
    if tenant is not None:
        rows = [r for r in rows if r["tenant"] == tenant]
    groups: dict[str, dict[str, list[int]]] = {"tenant": defaultdict(list),
                                               "workflow_id": defaultdict(list)}
    for r in rows:
        for key, by in groups.items():
            by[r[key] or ""].append(int(r["since"]))

    def listed(by: dict[str, list[int]], name: str) -> list[dict[str, Any]]:
        return sorted(({name: k, "queued": len(v), "oldest_wait_ms": now - min(v)}
                       for k, v in by.items()), key=lambda x: -x["queued"])  # fmt: skip

    oldest = min((int(r["since"]) for r in rows), default=None)
    return ok({"length": len(ctx.queue), "projected": len(rows),
               "oldest_wait_ms": now - oldest if oldest is not None else None,
               "max_queued": ctx.limits.max_queued, "limits": ctx.limits.model_dump(mode="json"),
               "by_tenant": listed(groups["tenant"], "tenant"),
               "by_workflow": listed(groups["workflow_id"], "workflow_id")})  # fmt: skip
