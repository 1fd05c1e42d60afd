"""The api_call executor against a real HTTP server on 127.0.0.1: output, output_mapping,
failure classes, timeouts, Idempotency-Key, the circuit breaker, masked logs."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from streams.contracts import StepTask
from streams.executors.api_call import ApiCallExecutor, resolve_path
from streams.executors.registry import ExecutorContext, load_executors, step_http_client
from streams.executors.runner import finished_update, run_task
from tests.conftest import free_port
from tests.http_stub import Stub, serve


@pytest.fixture(scope="module")
def stub() -> Iterator[Stub]:
    with serve() as s:
        yield s


@pytest.fixture
def clock() -> list[float]:
    return [1000.0]  # the breakers' time, moved by hand


@pytest.fixture
async def ctx(clock: list[float]) -> AsyncIterator[ExecutorContext]:
    async with step_http_client(8) as http:  # the client the executor service uses
        yield ExecutorContext(http, clock=lambda: clock[0])


def _task(config: dict[str, Any], *, task_id: str = "ex1/fetch/1", system: str | None = "ERP",
          timeout: float | None = None, type: str = "api_call") -> StepTask:  # fmt: skip
    return StepTask(task_id=task_id, execution_id="ex1", step_id="fetch", attempt=1, type=type,
                    system=system, config=config, timeout=timeout, dispatched_at=0)  # fmt: skip


async def _run(ctx: ExecutorContext, config: dict[str, Any], **kw: Any):
    return await run_task(load_executors(), _task(config, **kw), ctx)


def test_api_call_is_registered_through_its_entry_point():
    executors = load_executors()
    assert isinstance(executors["api_call"], ApiCallExecutor)
    assert executors["api_call"].config_model.__name__ == "ApiCallConfig"


async def test_success_output_mapping_and_idempotency_key(stub: Stub, ctx: ExecutorContext):
    config = {"method": "POST", "url": f"{stub.base_url}/json/ok", "parameters": {"date": "d1"},
              "headers": {"Authorization": "Bearer s3cr3t", "X-Trace": "t1"},
              "body": {"n": 1},
              "output_mapping": {"count": "data.count", "second": "data.items.1.id",
                                 "missing": "data.nope.deeper", "past_end": "data.items.7",
                                 "req": "headers.x-request-id"}}  # fmt: skip
    result = await _run(ctx, config, task_id="ex1/fetch/1")
    assert result.ok, result
    out = result.output
    assert out is not None and out["status"] == 200
    assert out["data"]["count"] == 3 and out["data"]["query"] == {"date": ["d1"]}
    assert json.loads(out["data"]["body"]) == {"n": 1}
    assert out["headers"]["content-type"] == "application/json"
    assert (out["count"], out["second"], out["missing"], out["past_end"], out["req"]) == (
        3, "b", None, None, "req-1")  # fmt: skip
    [seen] = stub.calls("/json/ok")
    assert seen.method == "POST"
    assert seen.headers["Idempotency-Key"] == "ex1/fetch/1"
    assert seen.headers["Authorization"] == "Bearer s3cr3t"  # sent as given, only logs mask
    logs = "\n".join(result.logs)
    assert "s3cr3t" not in logs and '"Authorization": "***"' in logs
    assert f"POST {stub.base_url}/json/ok" in result.logs[0]
    assert result.logs[-1].startswith("200 OK in ")


async def test_text_body_is_kept_as_text(stub: Stub, ctx: ExecutorContext):
    result = await _run(ctx, {"url": f"{stub.base_url}/text"}, system="TXT")
    assert result.output is not None and result.output["data"] == "plain words"


@pytest.mark.parametrize(("code", "error_type", "retryable"), [
    (503, "ServiceUnavailable", True), (429, "TooManyRequests", True),
    (502, "BadGateway", True), (504, "GatewayTimeout", True),
    (400, "BadRequest", False), (404, "NotFound", False), (418, "ClientError", False),
    (500, "ServerError", False), (501, "ServerError", False),
])  # fmt: skip
async def test_http_failure_classes(stub, ctx, code, error_type, retryable):
    result = await _run(ctx, {"url": f"{stub.base_url}/status/{code}"}, system=f"S{code}")
    assert (result.ok, result.error_type, result.retryable) == (False, error_type, retryable)
    assert result.error is not None and str(code) in result.error
    assert "error detail" in result.error and len(result.error) < 300 + 40
    update = finished_update(_task({}), result, received_at=1)
    assert update.phase == "failed" and update.output is None


async def test_slow_server_times_out_at_the_task_timeout(stub: Stub, ctx: ExecutorContext):
    started = time.monotonic()
    result = await _run(ctx, {"url": f"{stub.base_url}/slow/a?s=3", "timeout": 60},
                        timeout=0.3, system="SLOW")  # fmt: skip
    assert time.monotonic() - started < 2
    assert (result.error_type, result.retryable) == ("Timeout", True)


async def test_config_timeout_applies_without_a_task_timeout(stub, ctx):
    result = await _run(ctx, {"url": f"{stub.base_url}/slow/b?s=3", "timeout": 0.3},
                        system="SLOW")  # fmt: skip
    assert result.error_type == "Timeout"


async def test_timeout_bounds_the_whole_call_not_each_read(stub, ctx):
    # A body that trickles in keeps every single read under the timeout.
    started = time.monotonic()
    result = await _run(ctx, {"url": f"{stub.base_url}/drip/a?s=3"}, timeout=0.8, system="D")
    assert result.error_type == "Timeout" and time.monotonic() - started < 2.5


async def test_connection_refused_is_a_retryable_connection_error(ctx: ExecutorContext):
    result = await _run(ctx, {"url": f"http://127.0.0.1:{free_port()}/x"}, system=None)
    assert (result.error_type, result.retryable) == ("ConnectionError", True)


async def test_breaker_opens_per_system_and_fails_fast(stub, ctx, clock):
    url = f"{stub.base_url}/status/503"
    for _ in range(5):
        assert (await _run(ctx, {"url": url}, system="CRM")).error_type == "ServiceUnavailable"
    calls = len(stub.calls("/status/503"))
    result = await _run(ctx, {"url": url}, system="CRM")
    assert (result.error, result.error_type, result.retryable) == (
        "circuit open for CRM", "ServiceUnavailable", True)  # fmt: skip
    assert len(stub.calls("/status/503")) == calls  # not sent
    ok = await _run(ctx, {"url": f"{stub.base_url}/json/other"}, system="OTHER")
    assert ok.ok  # another system is not affected
    clock[0] += 30
    healed = await _run(ctx, {"url": f"{stub.base_url}/json/healed"}, system="CRM")
    assert healed.ok  # half-open trial succeeded: closed again
    assert (await _run(ctx, {"url": f"{stub.base_url}/json/healed"}, system="CRM")).ok


async def test_breaker_key_defaults_to_the_url_host(stub: Stub, ctx: ExecutorContext):
    for _ in range(5):
        await _run(ctx, {"url": f"http://127.0.0.1:{free_port()}/x"}, system=None)
    result = await _run(ctx, {"url": f"{stub.base_url}/json/host"}, system=None)
    assert result.error == "circuit open for 127.0.0.1"


async def test_client_errors_do_not_open_the_breaker(stub: Stub, ctx: ExecutorContext):
    for _ in range(8):
        await _run(ctx, {"url": f"{stub.base_url}/status/400"}, system="FIN")
    assert (await _run(ctx, {"url": f"{stub.base_url}/json/fin"}, system="FIN")).ok


async def test_unknown_type_and_bad_config_fail_without_retry(ctx: ExecutorContext):
    unknown = await _run(ctx, {}, type="teleport")
    assert (unknown.error_type, unknown.retryable) == ("UnknownStepType", False)
    bad = await _run(ctx, {"method": "GET"})  # no url
    assert (bad.error_type, bad.retryable) == ("InvalidConfig", False)
    assert bad.error is not None and "url" in bad.error


def test_resolve_path():
    obj = {"data": {"items": [{"id": "a"}], "n": 0}, "status": 200}
    assert resolve_path(obj, "data.items.0.id") == "a"
    assert resolve_path(obj, "data.n") == 0
    assert resolve_path(obj, "status.x") is None
    assert resolve_path(obj, "data.items.-1") is None
    assert resolve_path(obj, "data.items.x") is None


async def test_a_header_http_cannot_carry_fails_the_step_clearly(ctx):
    result = await _run(ctx, {"url": "http://127.0.0.1:9/x",
                              "headers": {"Authorization": "Bearer \u2026"}}, system="HDR")
    assert not result.ok and result.error_type == "InvalidRequest" and not result.retryable
    assert "Authorization" in (result.error or "")
