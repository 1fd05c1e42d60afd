"""A route FastAPI documents as usual and that serves its requests without FastAPI's
per-request machinery: for `POST /events`, the busiest path.

For a one-event request FastAPI itself spent ~100 µs of CPU here beyond what the same
route costs as a plain ASGI handler inside the same app (request and exit-stack setup,
dependency solving, the body read and validated through its generic path; measured with
uvicorn on 256 keep-alive connections, deploy/CAPACITY.md). At 2,000 requests/s on 2
cores the whole product has 1,000 µs per request.

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

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Receive, Scope, Send


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
