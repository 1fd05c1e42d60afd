"""The ``api_call`` step: one HTTP request through the process's shared httpx client.

Output: ``{"status", "data" (JSON body, else text), "headers"}`` plus one key per
``output_mapping`` entry (a dotted path into that output). Failures are classified so
the machine's retry policy can decide (DESIGN.md, Plan contract): timeouts, connection
errors and HTTP 429/502/503/504 are retryable; other 4xx and 5xx are not. Each call
goes through the target's circuit breaker and carries ``Idempotency-Key: <task_id>``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx

from streams.contracts import StepTask
from streams.executors.masking import mask_secrets, mask_url
from streams.executors.registry import ExecutorContext, Result
from streams.validation import ApiCallConfig

BODY_EXCERPT = 300
RETRYABLE_STATUS = {429: "TooManyRequests", 502: "BadGateway", 503: "ServiceUnavailable",
                    504: "GatewayTimeout"}  # fmt: skip
CLIENT_ERRORS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
                 405: "MethodNotAllowed", 409: "Conflict", 410: "Gone",
                 413: "PayloadTooLarge", 415: "UnsupportedMediaType",
                 422: "UnprocessableEntity"}  # fmt: skip


def classify_status(status: int) -> tuple[str, bool] | None:
    """``(error_type, retryable)`` of an HTTP status, or None when it is a success."""
    if status < 400:
        return None
    if status in RETRYABLE_STATUS:
        return RETRYABLE_STATUS[status], True
    if status < 500:
        return CLIENT_ERRORS.get(status, "ClientError"), False
    return "ServerError", False


def _latin1(name: str, value: str) -> bool:
    try:
        name.encode("ascii")
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def classify_exception(exc: BaseException) -> tuple[str, bool]:
    """``(error_type, retryable)`` of a request that got no response. The transport
    (aiohttp, streams/executors/registry.py) maps a refused connection to httpx's
    ``ConnectTimeout``: its own error, the cause, says what happened."""
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientError) and not isinstance(cause,
                                                                 aiohttp.ServerTimeoutError):
        if isinstance(cause, aiohttp.InvalidURL):
            return "InvalidUrl", False
        return "ConnectionError", True
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return "Timeout", True
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return "InvalidUrl", False
    if isinstance(exc, httpx.TooManyRedirects):
        return "TooManyRedirects", False
    if isinstance(exc, httpx.LocalProtocolError):
        return "InvalidRequest", False
    if isinstance(exc, httpx.TransportError | OSError):
        return "ConnectionError", True
    return "HttpError", False


def resolve_path(obj: Any, path: str) -> Any:
    """The value at dotted ``path`` (``data.items.0.id``) inside ``obj``, None if missing."""
    for part in path.split("."):
        if isinstance(obj, dict):
            if part not in obj:
                return None
            obj = obj[part]
        elif isinstance(obj, list) and part.isdigit() and int(part) < len(obj):
            obj = obj[int(part)]
        else:
            return None
    return obj


def build_output(response: httpx.Response, mapping: dict[str, str]) -> dict[str, Any]:
    output: dict[str, Any] = {"status": response.status_code, "data": _body(response),
                              "headers": dict(response.headers.items())}  # fmt: skip
    output.update({key: resolve_path(output, path) for key, path in mapping.items()})
    # Secret-looking response headers (set-cookie, authorization, …) are not stored; a
    # plan that needs one maps it to a key of its own above.
    output["headers"] = mask_secrets(output["headers"])
    return output


def _body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def _request_kwargs(config: ApiCallConfig) -> dict[str, Any]:
    body = config.body
    if body is None:
        return {}
    if isinstance(body, str):
        return {"content": body.encode()}
    return {"json": body}


class ApiCallExecutor:
    """Runs ``api_call`` steps."""

    type = "api_call"
    config_model = ApiCallConfig

    async def run(self, task: StepTask, ctx: ExecutorContext) -> Result:
        config = ApiCallConfig.model_validate(task.config)
        timeout = task.timeout if task.timeout is not None else config.timeout
        target = task.system or urlsplit(config.url).hostname or config.url
        headers = {**config.headers, "Idempotency-Key": task.task_id}
        logs = [f"{config.method} {mask_url(config.url)}"
                + (f" headers={json.dumps(mask_secrets(headers))}" if headers else "")]  # fmt: skip
        bad = [name for name, value in headers.items() if not _latin1(name, value)]
        if bad:  # HTTP cannot carry them; say so instead of failing inside httpx
            return Result.failure(f"header(s) {', '.join(bad)}: names must be ASCII and values "
                                  "Latin-1 (encode other text, e.g. percent-encoding)",
                                  "InvalidRequest", False, tuple(logs))  # fmt: skip
        breaker = ctx.breakers.get(target)
        if not breaker.allow(ctx.clock()):
            logs.append(f"circuit open for {target}: request not sent")
            return Result.failure(f"circuit open for {target}", "ServiceUnavailable", True,
                                  tuple(logs))  # fmt: skip
        result = await self._call(ctx.http, config, headers, timeout, logs)
        if result.ok:
            breaker.record("success", ctx.clock())
        else:
            breaker.record("failure" if result.retryable else "ignored", ctx.clock())
        return result

    async def _call(
        self, http: httpx.AsyncClient, config: ApiCallConfig, headers: dict[str, str],
        seconds: float, logs: list[str],
    ) -> Result:  # fmt: skip
        started = time.perf_counter()
        try:
            async with asyncio.timeout(seconds):  # the whole call, not each read
                response = await http.request(
                    config.method, config.url, headers=headers, params=config.parameters,
                    timeout=httpx.Timeout(seconds), **_request_kwargs(config),
                )  # fmt: skip
        except (TimeoutError, httpx.HTTPError, OSError) as exc:
            ms = round((time.perf_counter() - started) * 1000)
            error_type, retryable = classify_exception(exc)
            error = f"{error_type}: {config.method} {mask_url(config.url)} after {ms} ms"
            detail = str(exc) or type(exc).__name__
            if error_type != "Timeout":
                error += f": {detail[:BODY_EXCERPT]}"
            logs.append(f"no response after {ms} ms: {error_type} ({type(exc).__name__})")
            return Result.failure(error, error_type, retryable, tuple(logs))
        ms = round((time.perf_counter() - started) * 1000)
        logs.append(f"{response.status_code} {response.reason_phrase} in {ms} ms")
        failure = classify_status(response.status_code)
        if failure is not None:
            error_type, retryable = failure
            excerpt = response.text[:BODY_EXCERPT]
            error = f"HTTP {response.status_code} {response.reason_phrase}: {excerpt}"
            return Result.failure(error, error_type, retryable, tuple(logs))
        return Result.success(build_output(response, config.output_mapping), tuple(logs))
