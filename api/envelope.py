"""The response envelope and the error mapping: never a 500 with a stack trace."""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("runledger.api")
Category = Literal[
    "validation", "not_found", "conflict", "permission", "rate_limit", "unavailable", "internal"
]
_CATEGORY_BY_STATUS: dict[int, Category] = {
    400: "validation", 401: "permission", 403: "permission", 404: "not_found",
    405: "validation", 409: "conflict", 413: "validation", 415: "validation",
    422: "validation", 429: "rate_limit", 503: "unavailable",
}  # fmt: skip


class JsonResponse(Response):
    """JSON via orjson (datetimes, non-str keys) for every body the API writes."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def dumps(value: Any) -> bytes:
    """JSON bytes through orjson; a body with an integer past 64 bits (valid JSON, which
    orjson refuses to write) through the standard library instead."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(value, default=str, ensure_ascii=False).encode()


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, *, details: list[Any] | None = None,
        category: Category | None = None, headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.headers = headers  # e.g. Retry-After on a 429
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.category: Category = category or _CATEGORY_BY_STATUS.get(status, "internal")


def ok(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> JsonResponse:
    return JsonResponse({"success": True, "data": data, "error": None}, status, headers)


def error_response(err: ApiError) -> JsonResponse:
    body = {"success": False, "data": None, "error": {
        "code": err.code, "category": err.category, "message": err.message,
        "details": err.details}}  # fmt: skip
    return JsonResponse(body, err.status, err.headers)


def not_found(what: str, ident: str) -> ApiError:
    return ApiError(404, f"{what}_not_found", f"{what} {ident!r} not found")


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JsonResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JsonResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            msg = next(e.get("msg", "") for e in errors if e.get("type") == "json_invalid")
            return error_response(ApiError(400, "malformed_json", f"malformed JSON: {msg}"))
        details = [{"field": _field_path(tuple(e.get("loc", ()))), "message": e.get("msg", ""),
                    "type": e.get("type", "")} for e in errors]  # fmt: skip
        # A field is named; a rule over the whole body says what it wants.
        parts = [d["field"] or d["message"].removeprefix("Value error, ") for d in details[:10]]
        return error_response(ApiError(422, "invalid_request", "invalid: " + "; ".join(parts),
                                       details=details))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JsonResponse:
        codes = {404: "route_not_found", 405: "method_not_allowed"}
        code = codes.get(exc.status_code, "http_error")
        return error_response(ApiError(exc.status_code, code, str(exc.detail)))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JsonResponse:
        where = {"method": request.method, "path": request.url.path}
        execution_id = request.path_params.get("execution_id")
        log.exception("unhandled error", extra={**where, **(
            {"execution_id": execution_id} if execution_id else {})})  # fmt: skip
        return error_response(ApiError(500, "internal_error", "internal error; see server log"))
