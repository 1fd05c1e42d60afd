"""Edge back-pressure: the token bucket with time passed in, and the middleware on a tiny
FastAPI app (the product's own routes are tested elsewhere)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from prometheus_client import REGISTRY
from pydantic import BaseModel, ValidationError

from api.backpressure import (
    EdgeBackpressure,
    EdgeLimits,
    RateLimiter,
    TokenBucket,
    client_name,
    install_backpressure,
)
from api.envelope import install_error_handlers
from runledger.settings import Settings


class Batch(BaseModel):
    events: list[dict[str, Any]]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _app(limits: EdgeLimits, clock: Clock, calls: list[str]) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.state.edge_limits = limits
    app.add_middleware(EdgeBackpressure, clock=clock)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/things")
    async def things() -> dict[str, bool]:
        calls.append("things")
        return {"success": True}

    @app.post("/events")
    async def events(batch: Batch) -> dict[str, int]:
        calls.append("events")
        return {"accepted": len(batch.events)}

    @app.post("/raw")
    async def raw(request: Request) -> dict[str, int]:
        calls.append("raw")
        return {"bytes": len(await request.body())}

    return app


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def calls() -> list[str]:
    return []


def _client(app: FastAPI, ip: str = "10.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://edge")


def _refused(reason: str) -> float:
    return REGISTRY.get_sample_value("runledger_http_refused_total", {"reason": reason}) or 0.0


def _assert_envelope(response: httpx.Response, code: str, category: str) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"success", "data", "error"}
    assert body["success"] is False and body["data"] is None
    error = body["error"]
    assert set(error) == {"code", "category", "message", "details"}
    assert (error["code"], error["category"]) == (code, category)
    assert error["message"] and isinstance(error["details"], list) and error["details"]
    return dict(error)


# The token bucket and the limiter, with time passed in


def test_a_bucket_allows_the_burst_then_one_request_per_token():
    bucket = TokenBucket(tokens=3.0, updated=0.0)
    assert [bucket.take(0.0, rate=2.0, burst=3) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0, rate=2.0, burst=3) == pytest.approx(0.5)  # a token every 0.5 s
    assert bucket.take(0.5, rate=2.0, burst=3) == 0.0
    assert bucket.take(0.5, rate=2.0, burst=3) > 0


def test_a_bucket_refills_only_up_to_the_burst():
    bucket = TokenBucket(tokens=0.0, updated=0.0)
    assert bucket.take(3600.0, rate=1.0, burst=2) == 0.0  # an hour idle still gives 2
    assert bucket.take(3600.0, rate=1.0, burst=2) == 0.0
    assert bucket.take(3600.0, rate=1.0, burst=2) == pytest.approx(1.0)


def test_the_limiter_tells_how_long_to_wait():
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    assert limiter.wait("a", rate=0.1, burst=1) == 0.0
    assert limiter.wait("a", rate=0.1, burst=1) == pytest.approx(10.0)
    assert limiter.wait("b", rate=0.1, burst=1) == 0.0  # another client, another bucket
    clock.now += 10.0
    assert limiter.wait("a", rate=0.1, burst=1) == 0.0


def test_idle_buckets_are_dropped():
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    for name in ("a", "b", "c"):
        limiter.wait(name, rate=1.0, burst=1)
    assert set(limiter.buckets) == {"a", "b", "c"}
    clock.now += 1.0  # every bucket refilled: the same as none
    limiter.wait("d", rate=1.0, burst=1)
    assert set(limiter.buckets) == {"d"}


def test_buckets_stay_bounded_with_many_busy_clients():
    limiter = RateLimiter(max_buckets=3, clock=Clock())
    for i in range(100):
        limiter.wait(f"client-{i}", rate=1.0, burst=5)
    assert list(limiter.buckets) == ["client-97", "client-98", "client-99"]


def test_the_bucket_name_is_a_hash_of_the_key_never_the_key():
    def scope(*headers: tuple[bytes, bytes]) -> dict[str, Any]:
        return {"type": "http", "headers": list(headers), "client": ("10.0.0.9", 1)}

    bearer = client_name(scope((b"authorization", b"Bearer s3cret-key")))
    assert bearer.startswith("key:") and "s3cret" not in bearer
    assert client_name(scope((b"x-api-key", b"s3cret-key"))) == bearer  # one key, one bucket
    assert client_name(scope((b"authorization", b"Bearer other"))) != bearer
    assert client_name(scope()) == "ip:10.0.0.9"
    assert client_name(scope((b"authorization", b"Basic dXNlcjpwdw=="))) == "ip:10.0.0.9"


def test_burst_defaults_to_the_rate_and_at_least_one():
    assert EdgeLimits(rate_limit=5.0).burst == 5
    assert EdgeLimits(rate_limit=0.2).burst == 1
    assert EdgeLimits(rate_limit=5.0, rate_limit_burst=20).burst == 20


def test_limits_start_from_settings():
    app = FastAPI()
    install_backpressure(app, Settings(max_body_bytes=1234, rate_limit=7.5,
                                       rate_limit_burst=9))  # fmt: skip
    assert app.state.edge_limits == EdgeLimits(max_body_bytes=1234, rate_limit=7.5,
                                               rate_limit_burst=9)  # fmt: skip
    d = Settings()
    assert (d.max_body_bytes, d.rate_limit, d.rate_limit_burst) == (10_485_760, None, None)


# The body cap


async def test_a_body_over_the_cap_by_content_length_gets_413(clock, calls, caplog):
    app = _app(EdgeLimits(max_body_bytes=1000), clock, calls)
    before = _refused("body_too_large")
    async with _client(app) as client:
        small = await client.post("/events", json={"events": [{"x": 1}]})
        big = await client.post("/events", json={"events": [{"x": "y" * 2000}]})
    assert small.status_code == 200 and small.json() == {"accepted": 1}
    assert big.status_code == 413
    error = _assert_envelope(big, "body_too_large", "validation")
    assert error["details"][0]["max_body_bytes"] == 1000
    assert error["details"][0]["content_length"] > 1000
    assert calls == ["events"]  # the big one never reached the route
    assert _refused("body_too_large") == before + 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("path", ["/events", "/raw"])
async def test_a_chunked_body_over_the_cap_gets_413(clock, calls, caplog, path):
    app = _app(EdgeLimits(max_body_bytes=1000), clock, calls)

    async def chunks(count: int) -> AsyncIterator[bytes]:
        yield b'{"events": ['
        for i in range(count):
            yield (b", " if i else b"") + b'{"pad": "' + b"x" * 390 + b'"}'
        yield b"]}"

    json = {"content-type": "application/json"}
    async with _client(app) as client:
        small = await client.post(path, content=chunks(2), headers=json)
        big = await client.post(path, content=chunks(5), headers=json)
    assert "content-length" not in small.request.headers  # really streamed
    assert small.status_code == 200
    assert big.status_code == 413
    error = _assert_envelope(big, "body_too_large", "validation")
    assert error["details"] == [{"max_body_bytes": 1000}]
    assert len(calls) == (1 if path == "/events" else 2)  # /raw ran, its read failed
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# The rate limit


async def test_over_the_burst_gets_429_with_retry_after(clock, calls):
    app = _app(EdgeLimits(rate_limit=0.5, rate_limit_burst=3), clock, calls)
    before = _refused("rate_limited")
    async with _client(app) as client:
        allowed = [await client.get("/things") for _ in range(3)]
        refused = await client.get("/things")
        clock.now += 2.0  # one token back at 0.5 a second
        again = await client.get("/things")
    assert [r.status_code for r in allowed] == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "2"
    error = _assert_envelope(refused, "rate_limited", "rate_limit")
    assert error["details"][0]["retry_after_seconds"] == 2
    assert again.status_code == 200
    assert calls == ["things"] * 4
    assert _refused("rate_limited") == before + 1


async def test_retry_after_is_at_least_one_second(clock, calls):
    app = _app(EdgeLimits(rate_limit=100.0, rate_limit_burst=1), clock, calls)
    async with _client(app) as client:
        await client.get("/things")
        refused = await client.get("/things")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"


async def test_health_ready_and_metrics_are_never_limited(clock, calls):
    app = _app(EdgeLimits(rate_limit=1.0, rate_limit_burst=1, max_body_bytes=1), clock, calls)
    async with _client(app) as client:
        assert (await client.get("/things")).status_code == 200
        assert (await client.get("/things")).status_code == 429
        health = [await client.get("/health") for _ in range(20)]
    assert {r.status_code for r in health} == {200}


async def test_api_key_clients_are_limited_apart_from_ip_clients(clock, calls):
    app = _app(EdgeLimits(rate_limit=1.0, rate_limit_burst=1), clock, calls)
    key_a = {"Authorization": "Bearer key-a"}
    async with _client(app) as client:
        assert (await client.get("/things")).status_code == 200
        assert (await client.get("/things")).status_code == 429  # this IP is spent
        assert (await client.get("/things", headers=key_a)).status_code == 200
        assert (await client.get("/things", headers=key_a)).status_code == 429
        assert (await client.get("/things", headers={"X-Api-Key": "key-a"})).status_code == 429
        assert (await client.get("/things", headers={"X-Api-Key": "key-b"})).status_code == 200
    async with _client(app, ip="10.0.0.2") as other:
        assert (await other.get("/things")).status_code == 200


async def test_limits_changed_at_runtime_apply_to_the_next_request(clock, calls):
    limits = EdgeLimits()
    app = _app(limits, clock, calls)
    async with _client(app) as client:
        assert {(await client.get("/things")).status_code for _ in range(10)} == {200}
        app.state.edge_limits.rate_limit = 1.0
        assert (await client.get("/things")).status_code == 200
        assert (await client.get("/things")).status_code == 429
        app.state.edge_limits = EdgeLimits(max_body_bytes=10)  # a new holder: no rate limit
        assert (await client.get("/things")).status_code == 200
        assert (await client.post("/raw", content=b"x" * 11)).status_code == 413
        app.state.edge_limits.max_body_bytes = None
        assert (await client.post("/raw", content=b"x" * 11)).status_code == 200
    with pytest.raises(ValidationError):
        limits.rate_limit = 0  # a nonsense value is refused, not applied
