"""Requests the app sends straight to a lean route get the answers FastAPI's own stack
gives: the product's app as `create_app` makes it (its middlewares, its error handlers),
not started, so a request that gets past validation fails in the endpoint (no context)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from api.app import create_app
from runledger.settings import Settings

EVENTS = "/api/v1/events"
_EVENT = {"execution_id": "ex1", "event_type": "log", "timestamp": "2026-01-02T03:04:05Z"}
VALID = json.dumps({"events": [_EVENT]}).encode()
KEYS = {"op-key": {"role": "operator", "tenant": "acme"}, "view-key": {"role": "viewer"}}
JSON = {"content-type": "application/json"}

CASES: list[tuple[str, dict[str, Any], bytes, dict[str, str]]] = [
    ("valid, the endpoint fails", {}, VALID, JSON),
    ("malformed JSON", {}, b'{"events": [', JSON),
    ("invalid events", {}, b'{"events": [{"execution_id": "bad id!"}]}', JSON),
    ("no content type", {}, VALID, {}),
    ("no API key", {"api_keys": KEYS}, VALID, JSON),
    ("a viewer's key", {"api_keys": KEYS}, VALID, {**JSON, "authorization": "Bearer view-key"}),
    (
        "an operator's key, tenant set",
        {"api_keys": KEYS},
        VALID,
        {**JSON, "authorization": "Bearer op-key"},
    ),
    ("over the body cap", {"max_body_bytes": 64}, VALID, JSON),
]


def _client(**settings: Any) -> TestClient:
    return TestClient(create_app(Settings(**settings)), raise_server_exceptions=False)


def _answer(r: Response) -> tuple[int, Any, str | None, str | None]:
    return r.status_code, r.json(), r.headers.get("content-type"), r.headers.get("retry-after")


def _learned(client: TestClient) -> TestClient:
    """``client`` once FastAPI has routed one request of the lean route (any answer)."""
    client.post(EVENTS, content=b"{}", headers={**JSON, "authorization": "Bearer op-key"})
    assert ("POST", EVENTS) in client.app.straight  # type: ignore[attr-defined]
    return client


def _without_fastapis_stack(client: TestClient) -> None:
    """From now on a request that reaches FastAPI's stack fails with a RuntimeError."""

    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("FastAPI's stack was used")

    client.app.middleware_stack = broken  # type: ignore[attr-defined]


@pytest.mark.parametrize(("settings", "body", "headers"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_same_answer_straight_as_through_fastapi(settings: dict[str, Any], body: bytes,
                                                 headers: dict[str, str]):  # fmt: skip
    fresh = _client(**settings)
    assert not fresh.app.straight  # type: ignore[attr-defined]
    through_fastapi = _answer(fresh.post(EVENTS, content=body, headers=headers))
    straight = _answer(_learned(_client(**settings)).post(EVENTS, content=body, headers=headers))
    assert straight == through_fastapi
    assert straight[0] in (400, 401, 403, 413, 422, 500)


def test_a_rate_limited_request_gets_the_same_429():
    limits = {"rate_limit": 0.001, "rate_limit_burst": 1}
    headers = {**JSON, "authorization": "Bearer op-key"}  # the client _learned is
    fresh = _client(**limits)
    fresh.get("/api/v1/executions", headers=headers)  # its one token, not teaching the route
    through_fastapi = _answer(fresh.post(EVENTS, content=VALID, headers=headers))
    straight = _answer(_learned(_client(**limits)).post(EVENTS, content=VALID, headers=headers))
    assert straight == through_fastapi
    assert straight[0] == 429 and straight[3] is not None


def test_only_the_learned_method_and_path_skip_fastapis_stack():
    client = _learned(_client())
    _without_fastapis_stack(client)
    assert client.post(EVENTS, content=b"{}", headers=JSON).status_code == 422  # straight
    for method, path in (("PUT", EVENTS), ("POST", EVENTS + "/"), ("GET", "/health")):
        with pytest.raises(RuntimeError, match="FastAPI's stack"):
            TestClient(client.app).request(method, path)


def test_an_app_under_a_root_path_goes_through_fastapi():
    client = _learned(_client())
    client.app.root_path = "/behind-a-proxy"  # type: ignore[attr-defined]
    _without_fastapis_stack(client)
    with pytest.raises(RuntimeError, match="FastAPI's stack"):
        TestClient(client.app).post(EVENTS, content=b"{}", headers=JSON)
