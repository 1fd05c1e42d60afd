"""The origin documents' own paths (DESIGN.md "The origin documents' paths and words").

Clients written from the seeds run unchanged against these. Every path here is the
canonical route's own handler registered once more under the seed's path: an alias, or,
where the seed's words differ from ours, a mapping that rewrites the seed's request body
before that handler reads it, or the `data` of its successful answer after. So parameters,
checks, errors (422 naming the field, 404, 409) and everything the handler decides are
the canonical route's; nothing here decides anything.

- seed 000 (orchestration/execution guide): `/api/orchestration/…` and its WebSocket;
- seed 001 (execution-API note): `/api/v1/execute/{id}/status|logs|pause|resume|stop`;
- seed 002 §7.1's `/api/v1/executions/{id}/stop|pause|resume` are the canonical routes.

- seed 001's `POST /api/v1/execute` runs a saved workflow (as
  `POST /api/v1/workflows/{id}/execute`) or an inline definition (its plan generated as
  `POST /api/v1/plans/generate` does); seed 002's `/api/v1/workflows/{id}/execute` is the
  canonical route.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from api import workflows as wf
from api.deps import Ctx
from api.envelope import ok
from api.routes import control, executions, export, live, plans, tracking, workflows
from api.workflow_models import SeedExecuteBody

router = APIRouter(tags=["seed paths"])
ORCH = "/api/orchestration"
EXECUTE = "/api/v1/execute/{execution_id}"
Translate = Callable[[Any], Any]

# Seed 001's status words (pending, running, paused, completed, failed, stopped): only
# `succeeded` is spelled differently there.
STATUS_WORDS = {"succeeded": "completed"}
# Seed 001's log levels (info, warning, error): our `warn` is its `warning`.
LEVEL_WORDS = {"warn": "warning"}


# ------------------------------------------------------------------ the seeds' words


def bare_plan(body: Any) -> Any:
    """Seed 000's plan check may be sent its bare `Plan` (`{id, name, steps,
    estimated_duration_ms}`) where ours takes `{"plan": …}`."""
    if isinstance(body, dict) and "plan" not in body and "steps" in body:
        return {"plan": body}
    return body


def lift_environment(body: Any) -> Any:
    """Seed 000's `Inputs` object carries `environment` among the inputs
    (`{"environment": "test", "date": …}`): there it is the execution's environment,
    unless the body gives one itself."""
    if isinstance(body, dict) and "environment" not in body:
        inputs = body.get("inputs")
        if isinstance(inputs, dict) and "environment" in inputs:
            return {**body, "environment": inputs["environment"]}
    return body


def status_of(detail: dict[str, Any]) -> dict[str, Any]:
    """Seed 001's `ExecutionStatus` from the canonical execution detail."""
    current = detail.get("current_steps") or [None]
    return {
        "execution_id": detail["execution_id"],
        "status": STATUS_WORDS.get(detail["status"], detail["status"]),
        "current_node": current[0],
        "progress": detail.get("progress", 0.0),
        "message": detail.get("message") or None,
    }


def seed_levels(logs: dict[str, Any]) -> dict[str, Any]:
    """The canonical log lines with seed 001's level words."""
    items = [{**line, "level": LEVEL_WORDS.get(line["level"], line["level"])}
             for line in logs["items"]]  # fmt: skip
    return {**logs, "items": items}


# ------------------------------------------------------------------ how paths are added


class _RewrittenRequest(Request):
    """The request with another body (FastAPI's documented custom-request pattern)."""

    def __init__(self, request: Request, body: bytes) -> None:
        super().__init__(request.scope, request.receive)
        self._rewritten = body

    async def body(self) -> bytes:
        return self._rewritten


def _mapped(request_map: Translate | None, data_map: Translate | None) -> type[APIRoute]:
    """A route class running the handler between the two translations. A body that is not
    JSON goes through untouched (the handler answers 400); errors are the handler's."""

    class Mapped(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def mapped(request: Request) -> Response:
                if request_map is not None:
                    raw = await request.body()
                    try:
                        body = orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        pass  # not JSON: the handler answers 400, as canonically
                    else:
                        request = _RewrittenRequest(request, orjson.dumps(request_map(body)))
                response = await handler(request)
                if data_map is None or not 200 <= response.status_code < 300:
                    return response
                answer = orjson.loads(response.body)
                return ok(data_map(answer["data"]), response.status_code)

            return mapped

    return Mapped


def _alias(
    method: str, path: str, endpoint: Callable[..., Any], seed: str, canonical: str, *,
    request_map: Translate | None = None, data_map: Translate | None = None, words: str = "",
    **options: Any,
) -> None:  # fmt: skip
    """Register ``endpoint`` (the handler of ``method canonical``) under the seed's
    ``path``; ``words`` says what the mapping changes, if anything."""
    kind = "a mapping of" if request_map or data_map else "an alias of"
    doc = inspect.getdoc(endpoint) or ""
    router.add_api_route(
        path, endpoint, methods=[method], name=f"seed_{seed}_{endpoint.__name__}",
        summary=f"Seed {seed}'s path for {method} {canonical}",
        description=f"Seed {seed}'s `{method} {path}`: {kind} `{method} {canonical}` (the "
                    f"same handler){': ' + words if words else ''}.\n\n{doc}",
        route_class_override=_mapped(request_map, data_map) if request_map or data_map
        else None, **options,
    )  # fmt: skip


# ------------------------------------------------------------------ seed 000

_alias("POST", f"{ORCH}/plan/generate", plans.generate_plan_route, "000",
       "/api/v1/plans/generate")
_alias("POST", f"{ORCH}/plan/validate", plans.validate_plan_route, "000",
       "/api/v1/plans/validate", request_map=bare_plan,
       words="the body may also be a bare plan, `{id, name, steps, …}`")
_alias("POST", f"{ORCH}/execute/validate-inputs", plans.validate_inputs_route, "000",
       "/api/v1/executions/validate-inputs", request_map=lift_environment,
       words="`environment` may also sit among the `inputs`")
_alias("POST", f"{ORCH}/execute", executions.start_execution, "000", "/api/v1/executions",
       request_map=lift_environment, status_code=202,
       words="`environment` may also sit among the `inputs`")
_alias("GET", f"{ORCH}/tracking/summary", tracking.tracking_summary, "000",
       "/api/v1/tracking/summary")
_alias("GET", f"{ORCH}/tracking/records", tracking.tracking_records, "000",
       "/api/v1/tracking/records")
_alias("POST", f"{ORCH}/tracking/export", export.export, "000", "/api/v1/tracking/export")
router.add_api_websocket_route(f"{ORCH}/v1/monitor/{{execution_id}}", live.tail_execution,
                               name="seed_000_monitor")  # fmt: skip

# ------------------------------------------------------------------ seed 001

_alias("GET", f"{EXECUTE}/status", executions.get_execution, "001",
       "/api/v1/executions/{execution_id}", data_map=status_of,
       words="`{execution_id, status, current_node, progress (0..1), message}` in 001's "
             "words: `completed` for `succeeded`; pending, running, paused, failed and "
             "stopped as they are")
_alias("GET", f"{EXECUTE}/logs", executions.get_logs, "001",
       "/api/v1/executions/{execution_id}/logs", data_map=seed_levels,
       words="levels in 001's words (`info`, `warning` for `warn`, `error`)")
_alias("POST", f"{EXECUTE}/pause", control.pause, "001", "/api/v1/executions/{execution_id}/pause")
_alias("POST", f"{EXECUTE}/resume", control.resume, "001",
       "/api/v1/executions/{execution_id}/resume")
_alias("POST", f"{EXECUTE}/stop", executions.stop_execution, "001",
       "/api/v1/executions/{execution_id}/stop")


@router.post("/api/v1/execute", status_code=202, name="seed_001_execute",
             summary="Seed 001's path for running a workflow")  # fmt: skip
async def execute(body: SeedExecuteBody, ctx: Ctx):
    """Seed 001's `POST /api/v1/execute` (`ExecutionCreate`: `execution_id`, `workflow_id`,
    `definition`, `input_data`): a mapping. With a `definition` (seed 003's nodes with
    `edges` or `connections`) the execution runs the plan `POST /api/v1/plans/generate`
    makes of it, labelled with `workflow_id`; without one it runs the saved workflow
    `workflow_id` as `POST /api/v1/workflows/{id}/execute` does. Node types that have no
    executor here (seed 001's `llm`, `input`, `output`) are a 422 naming each node."""
    if body.definition is None:
        assert body.workflow_id is not None  # SeedExecuteBody wants one of the two
        return ok(await workflows.run_saved(ctx, body.workflow_id, body), 202)
    plan = await wf.generate(ctx, body.tenant, body.definition, workflow_id=body.workflow_id)
    return ok(await workflows.run_plan(ctx, plan, body, body.workflow_id, None), 202)
