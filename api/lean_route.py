"""A route FastAPI documents as usual and that serves its requests without FastAPI's
per-request machinery: for `POST /events`, the busiest path.

For a one-event request FastAPI itself spent ~100 µs of CPU here beyond what the same
route costs as a plain ASGI handler inside the same app (request and exit-stack setup,
dependency solving, the body read and validated through its generic path; measured with
uvicorn on 256 keep-alive connections, deploy/CAPACITY.md). At 2,000 requests/s on 2
cores the whole product has 1,000 µs per request.

``LeanApp`` goes one step further for a lean route with a fixed path: once FastAPI has
routed one request of it, the app sends the next requests for that method and path
straight to the route, through the app's own middlewares and error handlers (built from
the same lists FastAPI builds its stack from) but past FastAPI's other layers and its
router: ~40 µs less per request here (deploy/CAPACITY.md). It learns the path from
FastAPI instead of computing it, so whatever FastAPI routes there, it keeps routing there.
The middlewares are built a second time from the same list (``add_middleware``'s
arguments), so state they keep must be an object passed in that both copies share, as the
rate limiter is (api/backpressure.py), or live on ``app.state``.

The endpoint must take exactly ``body`` (a pydantic model, the JSON body) and ``ctx``
(``api.deps.Ctx``) and return a response. FastAPI reads that signature for the OpenAPI
document as for every other route; ``handle`` reads the body, validates it the way FastAPI
does (the same errors, so the same 400 and 422 answers: ``tests/unit/test_lean_route.py``
checks them against FastAPI's own) and calls the endpoint with the app's context. The
middlewares (limits, auth, timing) and the error handlers apply as to any route.
"""

from __future__ import annotations

import email.message
import functools
import json
import typing
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from starlette.exceptions import HTTPException
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send


def _unreadable() -> HTTPException:
    return HTTPException(400, "There was an error parsing the body")  # FastAPI's words


class LeanRoute(APIRoute):
    def __init__(self, path: str, endpoint: typing.Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        hints = typing.get_type_hints(endpoint, include_extras=True)
        if set(hints) - {"return"} != {"body", "ctx"}:
            raise TypeError(f"{endpoint.__name__}: a lean route's endpoint takes body and ctx")
        self._body: TypeAdapter[Any] = TypeAdapter(hints["body"])

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in (self.methods or ()):
            await super().handle(scope, receive, send)  # FastAPI's 405
            return
        if isinstance(scope["app"], LeanApp) and not self.param_convertors:
            scope["app"].straight.setdefault((scope["method"], scope["path"]), self)
        request = Request(scope, receive)
        try:
            raw = await request.body()
        except HTTPException:  # the middlewares' own (a body over the limit)
            raise
        except Exception as exc:  # as FastAPI answers it (a client gone mid-body)
            raise _unreadable() from exc
        body = self._validated(raw, request.headers.get("content-type"))
        response = await self.endpoint(body=body, ctx=scope["app"].state.ctx)
        await response(scope, receive, send)

    def _validated(self, raw: bytes, content_type: str | None) -> Any:
        """The body as FastAPI 0.115+ takes one JSON body parameter: parsed only when the
        content type is JSON (strict content type), validated from Python objects, each
        error located under ``body``."""
        if not raw:
            raise RequestValidationError([{"type": "missing", "loc": ("body",),
                                           "msg": "Field required", "input": None}])  # fmt: skip
        value: Any = raw
        if _is_json(content_type):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise RequestValidationError(
                    [{"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error",
                      "input": {}, "ctx": {"error": exc.msg}}], body=exc.doc) from exc  # fmt: skip
            except Exception as exc:  # no text (UnicodeDecodeError), nested too deep, ...
                raise _unreadable() from exc
        try:
            return self._body.validate_python(value, from_attributes=True)
        except ValidationError as exc:
            errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
            raise RequestValidationError(errors, body=value) from exc


@functools.lru_cache(maxsize=64)  # parsing the header costs ~7 µs; clients send few kinds
def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json"))


class LeanApp(FastAPI):
    """A FastAPI app that sends requests of its lean routes straight to them (see above)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.straight: dict[tuple[str, str], LeanRoute] = {}  # (method, path) → route
        self._straight_stack: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http" and not scope.get("root_path") and not self.root_path:
            route = self.straight.get((scope["method"], scope["path"]))
        if route is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"], scope["route"] = self, route  # as Starlette and FastAPI's router set them
        if self._straight_stack is None:
            self._straight_stack = self._build_straight_stack()
        await self._straight_stack(scope, receive, send)

    def _build_straight_stack(self) -> ASGIApp:
        """FastAPI's stack (``build_middleware_stack``) without its own layers: the error
        page, the app's middlewares, the exception handlers, then the route."""
        crash = None
        handlers: dict[Any, Any] = {}
        for key, handler in self.exception_handlers.items():
            if key in (500, Exception):
                crash = handler
            else:
                handlers[key] = handler
        app: ASGIApp = ExceptionMiddleware(_to_route, handlers=handlers, debug=self.debug)
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return ServerErrorMiddleware(app, handler=crash, debug=self.debug)


async def _to_route(scope: Scope, receive: Receive, send: Send) -> None:
    await scope["route"].handle(scope, receive, send)
