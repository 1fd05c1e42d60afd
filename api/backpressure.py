"""Edge back-pressure: 413 for oversized request bodies, 429 for clients over their rate.

Both answer with the error envelope before any route runs, so a flood costs a header
parse, not a Kafka publish. The limits live in ``app.state.edge_limits`` (an
``EdgeLimits``) and are read on every request: assign its fields, or put a new one there,
and the next request obeys.

Rate limiting is a token bucket per client, kept in this process: each API replica
limits on its own, so N replicas let a client through at up to N times the rate. The
client is its API key (``Authorization: Bearer`` or ``X-Api-Key``; the bucket is named
by a hash of it, never the key), else its IP as the server sees it (behind a proxy, run
uvicorn with ``--proxy-headers``). ``/health``, ``/ready`` and ``/metrics`` are never
limited: probes and scrapes must see an overloaded edge.

The body check is a pure ASGI middleware because ``@app.middleware("http")`` cannot
count a streamed (chunked) body without buffering it. Recent Starlette has its own
``RequestBodyLimitMiddleware`` (newer than our ``fastapi>=0.115`` floor promises), but it
answers plain text and fixes its limit at construction: neither the envelope nor a
runtime change.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.envelope import ApiError, JsonResponse, error_response
from runledger.metrics import HTTP_REFUSED
from runledger.settings import Settings

log = logging.getLogger("runledger.api")

UNLIMITED_PATHS = frozenset({"/health", "/ready", "/metrics"})
MAX_BUCKETS = 10_000  # clients tracked at once; the least recently seen go first


class EdgeLimits(BaseModel):
    """The edge's limits, changeable at runtime (assignments are validated)."""

    model_config = ConfigDict(validate_assignment=True, extra="forbid")

    max_body_bytes: int | None = Field(default=10_485_760, ge=1, description="None: no cap")
    rate_limit: float | None = Field(default=None, gt=0, description="per client per second")
    rate_limit_burst: int | None = Field(default=None, ge=1, description="None: the rate")

    @classmethod
    def from_settings(cls, settings: Settings) -> EdgeLimits:
        return cls(max_body_bytes=settings.max_body_bytes, rate_limit=settings.rate_limit,
                   rate_limit_burst=settings.rate_limit_burst)  # fmt: skip

    @property
    def burst(self) -> int:
        """Requests a client may send at once: the burst, else the rate (at least 1)."""
        if self.rate_limit_burst is not None:
            return self.rate_limit_burst
        return max(1, int(self.rate_limit or 1))


@dataclass
class TokenBucket:
    """``rate`` tokens a second up to ``burst``; a request takes one. Rate and burst come
    with each call, so a runtime change applies to buckets that already exist."""

    tokens: float
    updated: float  # monotonic seconds

    def take(self, now: float, rate: float, burst: int) -> float:
        """Take a token: 0.0 if there was one, else the seconds until there is."""
        self.tokens = min(float(burst), self.tokens + (now - self.updated) * rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / rate

    def full(self, now: float, rate: float, burst: int) -> bool:
        """Refilled to the brim: no different from a bucket never used, so it may go."""
        return self.tokens + (now - self.updated) * rate >= burst


class RateLimiter:
    """Token buckets by client name, at most ``max_buckets`` of them.

    Buckets sit in least-recently-used order; each call drops the oldest while it is full
    (losing nothing), and beyond ``max_buckets`` drops the oldest regardless, which gives
    that client a fresh burst: only more than ``max_buckets`` clients active within
    ``burst / rate`` seconds can earn that.
    """

    def __init__(self, max_buckets: int = MAX_BUCKETS,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        if max_buckets < 1:
            raise ValueError("max_buckets must be at least 1")
        self.max_buckets = max_buckets
        self.clock = clock
        self.buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def wait(self, client: str, rate: float, burst: int) -> float:
        """0.0 if ``client`` may go now (a token is taken), else the seconds to wait."""
        now = self.clock()
        bucket = self.buckets.get(client)
        if bucket is None:
            bucket = self.buckets[client] = TokenBucket(float(burst), now)
        else:
            self.buckets.move_to_end(client)
        seconds = bucket.take(now, rate, burst)
        while self.buckets:  # the bucket just used is last and never full
            name, oldest = next(iter(self.buckets.items()))
            if len(self.buckets) <= self.max_buckets and not oldest.full(now, rate, burst):
                break
            del self.buckets[name]
        return seconds


def client_name(scope: Scope) -> str:
    """The rate-limit bucket of a request: a hash of its API key, else ``ip:<host>``."""
    headers = Headers(scope=scope)
    scheme, _, credential = headers.get("authorization", "").partition(" ")
    key = credential.strip() if scheme.lower() == "bearer" else ""
    key = key or headers.get("x-api-key", "").strip()
    if key:
        return "key:" + hashlib.sha256(key.encode()).hexdigest()[:24]
    client = scope.get("client")
    return f"ip:{client[0] if client else 'unknown'}"


class BodyTooLarge(HTTPException):
    """Raised into the app when the streamed body passes the cap. An HTTPException, so a
    route passes it on as a 413; whatever the app answers, the middleware sends its own
    413 envelope in its place."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")


class EdgeBackpressure:
    """ASGI middleware: the rate limit, then the body cap, per ``app.state.edge_limits``."""

    def __init__(self, app: ASGIApp, max_buckets: int = MAX_BUCKETS,
                 clock: Callable[[], float] = time.monotonic,
                 limiter: RateLimiter | None = None) -> None:  # fmt: skip
        self.app = app
        # Passed in by the app so that every stack built from its middleware list (FastAPI's
        # and api/lean_route.py's) counts a client in the same buckets.
        self.limiter = limiter or RateLimiter(max_buckets, clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limits = _limits(scope) if scope["type"] == "http" else None
        if limits is None or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        if limits.rate_limit is not None:
            rate, burst = limits.rate_limit, limits.burst
            seconds = self.limiter.wait(client_name(scope), rate, burst)
            if seconds > 0:
                await _rate_limited(rate, burst, seconds)(scope, receive, send)
                return
        cap = limits.max_body_bytes
        if cap is None:
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > cap:
            await _too_large(cap, length)(scope, receive, send)
            return
        await _with_counted_body(self.app, cap, scope, receive, send)


def install_backpressure(app: FastAPI, settings: Settings) -> None:
    """Put the limits from ``settings`` on ``app.state.edge_limits`` and add the middleware
    (outermost of ours: a refused request costs no timing or routing)."""
    app.state.edge_limits = EdgeLimits.from_settings(settings)
    app.add_middleware(EdgeBackpressure, limiter=RateLimiter())


async def _with_counted_body(app: ASGIApp, cap: int, scope: Scope, receive: Receive,
                             send: Send) -> None:  # fmt: skip
    """Run ``app``, counting body bytes as it reads them; past ``cap`` its reads fail and
    the client gets the 413 instead of what the app answered to that failure."""
    received, over, started = 0, False, False

    async def counted_receive() -> Message:
        nonlocal received, over
        if over:
            raise BodyTooLarge(cap)
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > cap:
                over = True
                raise BodyTooLarge(cap)
        return message

    async def guarded_send(message: Message) -> None:
        nonlocal started
        if over and not started:
            return
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await app(scope, counted_receive, guarded_send)
    except Exception:
        if not over:
            raise
    if over and started:  # a route that answers before reading all it is sent
        log.warning("request body over %d bytes after the response started", cap)
    elif over:
        await _too_large(cap, None)(scope, receive, send)


def _limits(scope: Scope) -> EdgeLimits | None:
    app: Any = scope.get("app")
    return getattr(getattr(app, "state", None), "edge_limits", None)


def _content_length(scope: Scope) -> int | None:
    try:
        return int(Headers(scope=scope).get("content-length", ""))
    except ValueError:  # absent (chunked) or garbled: the byte count decides
        return None


def _too_large(cap: int, length: int | None) -> JsonResponse:
    HTTP_REFUSED.labels("body_too_large").inc()
    detail: dict[str, int] = {"max_body_bytes": cap}
    if length is not None:
        detail["content_length"] = length
    message = f"request body over {cap} bytes; split it into smaller requests"
    return error_response(ApiError(413, "body_too_large", message, details=[detail]))


def _rate_limited(rate: float, burst: int, seconds: float) -> JsonResponse:
    HTTP_REFUSED.labels("rate_limited").inc()
    retry_after = max(1, math.ceil(seconds))
    message = f"over {rate:g} requests per second; retry after {retry_after} s"
    detail = {"rate_limit": rate, "burst": burst, "retry_after_seconds": retry_after}
    response = error_response(ApiError(429, "rate_limited", message, details=[detail]))
    response.headers["Retry-After"] = str(retry_after)
    return response
