"""Saved workflows (seed 003): CRUD with versions, node-by-node editing, import/export,
and running the current version."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api import workflows as wf
from api.deps import AppContext, Ctx, new_id
from api.envelope import ApiError, ok
from api.models import ID_PATTERN, StartRequest
from api.routes.executions import start
from api.workflow_models import ExecuteWorkflowBody, ImportBody, WorkflowBody
from streams.definition import Connection, Node
from streams.plan import Plan

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"])
WorkflowId = Annotated[str, Path(min_length=1, max_length=200, pattern=ID_PATTERN)]
Tenant = Annotated[str, Query(min_length=1, max_length=100)]
Version = Annotated[int | None, Query(ge=1)]


@router.get("")
async def list_workflows(
    ctx: Ctx, tenant: Tenant = "default",
    name: Annotated[str | None, Query(max_length=255)] = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
):  # fmt: skip
    """The current version of each workflow, by id; `name` matches part of the name (any
    case), `tag` one tag."""
    docs = await wf.workflows.current(ctx.ch, tenant, database=ctx.db, name=name, tag=tag,
                                      after=cursor, limit=limit)  # fmt: skip
    items = [wf.view(d) for d in docs]
    return ok({"items": items, "next_cursor": items[-1]["id"] if len(items) == limit else None})


@router.post("", status_code=201)
async def create_workflow(body: WorkflowBody, ctx: Ctx, tenant: Tenant = "default"):
    """Save a new workflow (version 1): nodes + connections, or a plan's `steps`, or
    nothing yet (a draft to fill node by node). 409 when the id is taken."""
    doc = await wf.save(ctx, tenant, body.id or new_id("wf"), body.changes(), create=True)
    return ok(wf.view(doc), 201)


@router.get("/export")
async def export_workflows(
    ctx: Ctx, tenant: Tenant = "default", ids: Annotated[list[str] | None, Query()] = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
):  # fmt: skip
    """The current version of the workflows named by `ids` (all by default, or those with
    `tag`) as one JSON document that `POST /workflows/import` takes back."""
    docs = await wf.workflows.current(ctx.ch, tenant, database=ctx.db, tag=tag, ids=ids,
                                      limit=100_000)  # fmt: skip
    return ok({"workflows": [wf.view(d) for d in docs]},
              headers={"Content-Disposition": 'attachment; filename="workflows.json"'})


@router.post("/import")
async def import_workflows(body: ImportBody, ctx: Ctx, tenant: Tenant = "default"):
    """Save each workflow of an export: a new workflow, or a new version of the one with
    its id (the imported definition replaces the current one)."""
    items = []
    for w in body.workflows:
        wid = w.id or new_id("wf")
        changes = {**wf.DEFAULTS, **w.changes()}
        try:
            doc = await wf.save(ctx, tenant, wid, changes, create=True)
        except ApiError as exc:
            if exc.code != "workflow_exists":
                raise
            doc = await wf.save(ctx, tenant, wid, changes, create=False)
        items.append({"id": wid, "version": doc["version"]})
    return ok({"items": items, "imported": len(items)})


@router.get("/{workflow_id}")
async def get_workflow(
    workflow_id: WorkflowId, ctx: Ctx, tenant: Tenant = "default", version: Version = None
):
    """The current version (or `version`), with `valid` and the `problems` that keep it
    from running."""
    doc = await wf.load(ctx, tenant, workflow_id, version)
    try:
        await wf.generate(ctx, tenant, wf.definition_of(doc))
        problems = []
    except ApiError as exc:
        problems = exc.details
    return ok(wf.view(doc, problems))


@router.put("/{workflow_id}")
async def update_workflow(
    workflow_id: WorkflowId, body: WorkflowBody, ctx: Ctx, tenant: Tenant = "default"
):
    """A new version: the fields given replace the current version's, the rest stay."""
    if body.id is not None and body.id != workflow_id:
        raise ApiError(422, "invalid_workflow", "the body's id differs from the path's",
                       details=[{"field": "id", "problem": "must match the path"}])
    return ok(wf.view(await wf.save(ctx, tenant, workflow_id, body.changes(), create=False)))


@router.delete("/{workflow_id}")
async def delete_workflow(workflow_id: WorkflowId, ctx: Ctx, tenant: Tenant = "default"):
    """Delete it: it no longer lists, reads or runs (the journal keeps its history)."""
    version = await wf.delete(ctx, tenant, workflow_id)
    return ok({"id": workflow_id, "deleted": True, "version": version})


@router.get("/{workflow_id}/versions")
async def list_versions(workflow_id: WorkflowId, ctx: Ctx, tenant: Tenant = "default"):
    """Every saved version, oldest first (read one with `GET /workflows/{id}?version=N`)."""
    await wf.load(ctx, tenant, workflow_id)
    items = await wf.workflows.versions(ctx.ch, tenant, workflow_id, database=ctx.db)
    return ok({"items": [i for i in items if not i["deleted"]], "next_cursor": None})


@router.post("/{workflow_id}/nodes", status_code=201)
async def add_node(workflow_id: WorkflowId, body: Node, ctx: Ctx, tenant: Tenant = "default"):
    """Seed 003's node-by-node editing: add a node (a new version); its id is the next
    number when none is given."""
    doc = await wf.load(ctx, tenant, workflow_id)
    node = body.model_dump(mode="json", by_alias=False, exclude_unset=True)
    saved = await wf.save(ctx, tenant, workflow_id, {"nodes": [*doc["nodes"], node]},
                          create=False)  # fmt: skip
    return ok({**saved["nodes"][-1], "workflow_id": workflow_id, "version": saved["version"]},
              201)  # fmt: skip


@router.post("/{workflow_id}/connections", status_code=201)
async def add_connection(
    workflow_id: WorkflowId, body: Connection, ctx: Ctx, tenant: Tenant = "default"
):
    """Connect two nodes of the workflow (a new version)."""
    doc = await wf.load(ctx, tenant, workflow_id)
    known = {str(n["id"]) for n in doc["nodes"]}
    missing = [{"field": f, "problem": f"no node {v!r} in workflow {workflow_id!r}"}
               for f, v in (("from_node_id", body.from_node_id), ("to_node_id", body.to_node_id))
               if str(v) not in known]  # fmt: skip
    if missing:
        raise ApiError(422, "unknown_node", missing[0]["problem"], details=missing)
    conn = body.model_dump(mode="json", exclude_unset=True)
    conn["connection_type"] = body.connection_type
    saved = await wf.save(ctx, tenant, workflow_id,
                          {"connections": [*doc["connections"], conn]}, create=False)
    return ok({**saved["connections"][-1], "workflow_id": workflow_id,
               "version": saved["version"]}, 201)  # fmt: skip


@router.post("/{workflow_id}/execute", status_code=202)
async def execute_workflow(
    workflow_id: WorkflowId, ctx: Ctx, body: ExecuteWorkflowBody | None = None,
):  # fmt: skip
    """Run the current version (or `version`): 409 for a draft or an inactive workflow,
    422 with every problem for an invalid one. Seed 003's `input_data`, `execution_name`
    and `config.timeout` (the execution's timeout, seconds) are taken as they are."""
    return ok(await run_saved(ctx, workflow_id, body or ExecuteWorkflowBody()), 202)


async def run_saved(ctx: AppContext, workflow_id: str, body: ExecuteWorkflowBody) -> dict:
    """Start the saved workflow's version that ``body`` names (its current one by default)."""
    doc = await wf.load(ctx, body.tenant, workflow_id, body.version)
    status = wf.status_of(doc)
    if status != "active":
        raise ApiError(409, f"workflow_{status}", f"workflow {workflow_id!r} is {status}: "
                       + ("add nodes or steps first" if status == "draft"
                          else "set is_active true to run it"))  # fmt: skip
    plan = await wf.generate(ctx, body.tenant, wf.definition_of(doc), workflow_id=workflow_id,
                             name=doc.get("name"))  # fmt: skip
    return await run_plan(ctx, plan, body, workflow_id, doc["version"])


async def run_plan(
    ctx: AppContext, plan: Plan, body: ExecuteWorkflowBody, workflow_id: str | None,
    version: int | None,
) -> dict:  # fmt: skip
    """Start ``plan`` orchestrated with the run options of ``body``; what the 202 answers."""
    labels = dict(body.labels)
    if version is not None:
        labels["workflow_version"] = str(version)
    if body.execution_name:
        labels["execution_name"] = body.execution_name
    req = StartRequest(mode="orchestrated", execution_id=body.execution_id, plan=plan,
                       inputs=body.inputs, environment=body.environment, labels=labels,
                       workflow_id=workflow_id, tenant=body.tenant,
                       timeout_sec=body.config.timeout or body.timeout_sec,
                       debug=body.debug, priority=body.priority)  # fmt: skip
    answer = await start(ctx, req)
    return {**answer, "workflow_id": workflow_id, "version": version}
