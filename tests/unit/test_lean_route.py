"""A lean route answers every body exactly as FastAPI's own route for the same endpoint
does: same status, same envelope, same error details, same OpenAPI operation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from api.deps import Ctx
from api.envelope import install_error_handlers, ok
from api.lean_route import LeanRoute
from api.models import EventBatch

_EVENT = {"execution_id": "ex1", "event_type": "step_started", "step_id": "s1",
          "timestamp": "2026-01-02T03:04:05Z"}  # fmt: skip
JSON = "application/json"


async def report(body: EventBatch, ctx: Ctx):
    """Echo what the endpoint was given."""
    return ok({"events": [e.model_dump(mode="json") for e in body.events], "ctx": ctx}, 202)


def _client(route_class: type | None) -> TestClient:
    router = APIRouter(prefix="/api/v1", **({"route_class": route_class} if route_class else {}))
    router.post("/events", status_code=202)(report)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    app.state.ctx = "the app's context"
    return TestClient(app, raise_server_exceptions=False)


FASTAPI, LEAN = _client(None), _client(LeanRoute)

CASES: list[tuple[str, bytes, str | None]] = [
    ("valid", b'{"events": [%s]}' % json.dumps(_EVENT).encode(), JSON),
    ("valid, +json type", b'{"events": [%s]}' % json.dumps(_EVENT).encode(),
     "application/vnd.runledger+json; charset=utf-8"),
    ("no body", b"", JSON),
    ("malformed JSON", b'{"events": [', JSON),
    ("bytes that are no text", b"\x80", JSON),
    ("bytes that are no text, no JSON type", b"\x80", None),
    ("JSON nested past the parser's depth", b"[" * 100_000, JSON),
    ("NaN is JSON to FastAPI", b'{"events": [{"execution_id": "e", "event_type": "log", '
     b'"timestamp": "2026-01-02T03:04:05Z", "data": {"x": NaN}}]}', JSON),
    ("no content type", b'{"events": []}', None),
    ("text content type", b'{"events": []}', "text/plain"),
    ("an array", b"[]", JSON),
    ("null", b"null", JSON),
    ("no events", b'{"events": []}', JSON),
    ("unknown field", b'{"events": [], "extra": 1}', JSON),
    ("bad events", b'{"events": [{"execution_id": "bad id!", "event_type": "nope", '
     b'"timestamp": "yesterday"}, {"event_type": "step_failed", "execution_id": "e", '
     b'"timestamp": "1900-01-01T00:00:00Z"}]}', JSON),
    ("a step event without its step", b'{"events": [{"execution_id": "e", '
     b'"event_type": "step_started", "timestamp": "2026-01-02T03:04:05Z"}]}', JSON),
    ("an integer past 64 bits", b'{"events": [{"execution_id": "e", "event_type": "log", '
     b'"timestamp": "2026-01-02T03:04:05Z", "data": {"n": 123456789012345678901234567890}}]}',
     JSON),
]


@pytest.mark.parametrize(("body", "content_type"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_same_answer_as_fastapi(body: bytes, content_type: str | None):
    headers = {"content-type": content_type} if content_type else {}
    answers = [c.post("/api/v1/events", content=body, headers=headers) for c in (FASTAPI, LEAN)]
    fastapi_answer, lean_answer = ((a.status_code, a.json()) for a in answers)
    assert lean_answer == fastapi_answer
    assert lean_answer[0] in (202, 400, 422)


def test_a_valid_body_reaches_the_endpoint_with_the_apps_context():
    answer = LEAN.post("/api/v1/events", json={"events": [_EVENT]})
    assert answer.status_code == 202
    data: dict[str, Any] = answer.json()["data"]
    assert data["ctx"] == "the app's context"
    assert [e["step_id"] for e in data["events"]] == ["s1"]


def test_other_methods_and_the_openapi_operation_are_fastapis():
    assert LEAN.get("/api/v1/events").status_code == FASTAPI.get("/api/v1/events").status_code
    assert LEAN.get("/api/v1/events").status_code == 405
    paths = [c.get("/openapi.json").json()["paths"]["/api/v1/events"] for c in (FASTAPI, LEAN)]
    assert paths[0] == paths[1]
    assert "requestBody" in paths[1]["post"]


def test_an_endpoint_that_takes_more_than_body_and_ctx_is_refused():
    async def other(body: EventBatch, ctx: Ctx, extra: int = 0):
        return ok({})

    with pytest.raises(TypeError, match="takes body and ctx"):
        LeanRoute("/x", other, methods=["POST"])


async def _answer_to_a_client_gone_mid_body(app: Any) -> tuple[int, bytes]:
    scope = {"type": "http", "method": "POST", "path": "/api/v1/events", "raw_path": b"",
             "query_string": b"", "headers": [(b"content-type", b"application/json")],
             "root_path": "", "scheme": "http", "server": ("test", 80), "client": ("c", 1),
             "http_version": "1.1"}  # fmt: skip
    chunks = iter([{"type": "http.request", "body": b'{"events": [', "more_body": True},
                   {"type": "http.disconnect"}])  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(chunks)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def test_a_client_gone_mid_body_gets_fastapis_answer():
    answers = [await _answer_to_a_client_gone_mid_body(c.app) for c in (FASTAPI, LEAN)]
    assert answers[1] == answers[0]
    assert answers[1][0] == 400
