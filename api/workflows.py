"""Saved workflows: each change is a new version, journaled (DESIGN.md "The journal") and
turned into a versioned ClickHouse row by the same insert (migration 6); plans are
generated from a version (streams.definition) and checked like any plan.

Versions are numbered by the API process that saves them, under one lock: two API
processes saving the same workflow in the same instant would both write version N+1, and
the later journal entry wins that number.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import ValidationError

from api.accept import accept
from api.deps import AppContext, now_ms
from api.envelope import ApiError, dumps, not_found
from api.step_types import known_types
from projections import stats, workflows
from projections.filters import Filters
from projections.journal import Entry
from streams.definition import Definition, step_ids, to_plan
from streams.plan import Plan, canonical_type
from streams.times import iso_ms
from streams.validation import validate_plan

DEFAULTS: dict[str, Any] = {"name": None, "description": None, "version_label": None,
                            "config": {}, "tags": [], "is_active": True, "steps": None,
                            "nodes": [], "connections": []}  # fmt: skip
_LOCK = asyncio.Lock()
_ESTIMATE_WINDOW_MS = 30 * 24 * 3600 * 1000
_MAX_DEPTH = 8


def definition_of(doc: dict[str, Any]) -> Definition:
    return Definition.model_validate({k: doc.get(k) or DEFAULTS[k]
                                      for k in ("steps", "nodes", "connections")})  # fmt: skip


def status_of(doc: dict[str, Any]) -> str:
    """`draft` (nothing to run yet), `inactive` (switched off) or `active`."""
    if definition_of(doc).is_empty:
        return "draft"
    return "active" if doc.get("is_active", True) else "inactive"


def view(doc: dict[str, Any], problems: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k != "deleted"}
    out["status"] = status_of(doc)
    if problems is not None:
        out["valid"] = not problems
        out["problems"] = problems
    return out


async def load(
    ctx: AppContext, tenant: str, workflow_id: str, version: int | None = None
) -> dict[str, Any]:
    """A saved workflow (its current version, or ``version``); 404 when there is none."""
    if version is None:
        doc = await workflows.latest(ctx.ch, tenant, workflow_id, database=ctx.db)
    else:
        doc = await workflows.version(ctx.ch, tenant, workflow_id, version, database=ctx.db)
    if doc is None or doc.get("deleted"):
        raise not_found("workflow", workflow_id if version is None
                        else f"{workflow_id} version {version}")  # fmt: skip
    return doc


def _numbered(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nodes or connections, the ones without an id numbered after the highest one."""
    top = max((i["id"] for i in items if isinstance(i.get("id"), int)), default=0)
    out = []
    for item in items:
        if item.get("id") is None:
            top += 1
            item = {**item, "id": top}
        out.append(item)
    return out


async def save(
    ctx: AppContext, tenant: str, workflow_id: str, changes: dict[str, Any], *, create: bool,
    actor: str = "anonymous",
) -> dict[str, Any]:  # fmt: skip
    """A new version of ``workflow_id``: ``changes`` over the current one (or the defaults
    when ``create``). 409 when creating one that exists, 404 when changing one that
    does not, 422 when the result is not a workflow."""
    async with _LOCK:
        cur = await workflows.latest(ctx.ch, tenant, workflow_id, database=ctx.db)
        alive = cur is not None and not cur.get("deleted")
        if create and alive:
            raise ApiError(409, "workflow_exists", f"workflow {workflow_id!r} exists: change it "
                           "with PUT /api/v1/workflows/{id}")  # fmt: skip
        if not create and not alive:
            raise not_found("workflow", workflow_id)
        base = {k: cur.get(k, v) for k, v in DEFAULTS.items()} if alive and cur else DEFAULTS
        doc = {**base, **changes}
        if not doc.get("name"):
            raise ApiError(422, "invalid_workflow", "a workflow needs a name",
                           details=[{"field": "name", "problem": "required"}])
        doc["nodes"] = _numbered(doc.get("nodes") or [])
        doc["connections"] = _numbered(doc.get("connections") or [])
        _check_ids(doc["nodes"], "nodes")
        _check_ids(doc["connections"], "connections")
        at = iso_ms(now_ms())
        doc.update(id=workflow_id, version=(cur["version"] if cur else 0) + 1, updated_at=at,
                   updated_by=actor, deleted=False,
                   created_at=cur["created_at"] if alive and cur else at,
                   created_by=cur.get("created_by", actor) if alive and cur else actor)
        await _journal(ctx, "workflow.save", tenant, actor, doc)
        return doc


def _check_ids(items: list[dict[str, Any]], what: str) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        key = str(item["id"])
        if key in seen:
            raise ApiError(422, "invalid_workflow", f"two {what} have the id {key!r}",
                           details=[{"field": f"{what}.{i}.id", "problem": "duplicate id"}])
        seen.add(key)


async def delete(ctx: AppContext, tenant: str, workflow_id: str, actor: str = "anonymous") -> int:
    """Mark ``workflow_id`` deleted (a version of its own); its number."""
    async with _LOCK:
        cur = await workflows.latest(ctx.ch, tenant, workflow_id, database=ctx.db)
        if cur is None or cur.get("deleted"):
            raise not_found("workflow", workflow_id)
        doc = {**cur, "version": cur["version"] + 1, "deleted": True,
               "updated_at": iso_ms(now_ms()), "updated_by": actor}  # fmt: skip
        await _journal(ctx, "workflow.delete", tenant, actor, doc)
        return int(doc["version"])


async def _journal(
    ctx: AppContext, action: str, tenant: str, actor: str, doc: dict[str, Any]
) -> None:
    # No topic: nothing consumes a workflow change from Kafka; ClickHouse holds it.
    await accept(ctx, [Entry(action=action, execution_id=doc["id"], ids=(), topic="",
                             payload=dumps(doc), received_at=now_ms(), tenant=tenant,
                             actor=actor)])  # fmt: skip


async def generate(
    ctx: AppContext, tenant: str, definition: Definition, *, workflow_id: str | None = None,
    name: str | None = None,
) -> Plan:  # fmt: skip
    """The plan ``definition`` describes, its sub-executions' saved workflows resolved and
    the whole checked like any plan; 422 naming every problem (and its node)."""
    plan, problems = to_plan(definition, plan_id=workflow_id, name=name)
    if plan is not None:
        plan = await resolve_children(ctx, tenant, plan)
        problems = validate_plan(plan, await known_types(ctx, tenant))
        sids = step_ids(definition.nodes)
        nodes = {sids[str(n.id)]: n.id for n in definition.nodes}
        problems = [{**p, "node_id": nodes[p["step_id"]]} if p["step_id"] in nodes else p
                    for p in problems]  # fmt: skip
    if problems or plan is None:
        raise ApiError(422, "invalid_workflow", f"{len(problems)} problem(s) in the workflow: "
                       + "; ".join(f"{p.get('step_id') or p.get('node_id')}: {p['problem']}"
                                   for p in problems[:5]), details=problems)  # fmt: skip
    if workflow_id is not None:
        plan = plan.model_copy(update={"estimated_duration_ms": await _estimate(
            ctx, tenant, workflow_id)})  # fmt: skip
    return plan


async def _estimate(ctx: AppContext, tenant: str, workflow_id: str) -> int | None:
    """The average duration of the workflow's runs in the last 30 days, if it has any."""
    now = now_ms()
    figures = await stats.workflow_stats(
        ctx.ch, workflow_id, Filters(tenant=tenant, since_ms=now - _ESTIMATE_WINDOW_MS,
                                     until_ms=now + 1), database=ctx.db)  # fmt: skip
    avg = (figures.get("duration_ms") or {}).get("avg")
    return round(avg) if avg is not None else None


async def resolve_children(ctx: AppContext, tenant: str, plan: Plan, _seen: tuple = ()) -> Plan:
    """``plan`` with each sub_execution that names a saved workflow given that workflow's
    plan (its ``version``, else the current one), fixed when the execution starts."""
    steps = []
    for step in plan.steps:
        wid = step.config.get("workflow_id")
        if canonical_type(step.type) != "sub_execution" or not wid or step.config.get("plan"):
            steps.append(step)
            continue
        if wid in _seen or len(_seen) >= _MAX_DEPTH:
            raise ApiError(422, "invalid_plan", f"step {step.id}: sub-executions of saved "
                           f"workflows nest in a cycle or deeper than {_MAX_DEPTH}: "
                           + " -> ".join((*_seen, wid)),
                           details=[{"step_id": step.id, "problem": "workflow cycle"}])
        try:
            doc = await load(ctx, tenant, wid, step.config.get("version"))
            child, problems = to_plan(definition_of(doc), plan_id=wid, name=doc.get("name"))
        except (ApiError, ValidationError) as exc:
            raise ApiError(422, "invalid_plan", f"step {step.id}: config.workflow_id: {exc}",
                           details=[{"step_id": step.id, "problem": str(exc)}]) from exc
        if child is None:
            raise ApiError(422, "invalid_plan", f"step {step.id}: workflow {wid!r} has no "
                           "runnable plan", details=problems)  # fmt: skip
        child = await resolve_children(ctx, tenant, child, (*_seen, wid))
        config = {**step.config, "plan": child.model_dump(mode="json", by_alias=True,
                                                          exclude_none=True)}  # fmt: skip
        steps.append(step.model_copy(update={"config": config}))
    return plan.model_copy(update={"steps": tuple(steps)})
