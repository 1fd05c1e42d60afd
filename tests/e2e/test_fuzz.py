"""Bad input over HTTP, generated from the OpenAPI schema (schemathesis): whatever comes
in, valid or not, no 5xx, no stack trace, and every error in the envelope. A few
examples per operation and mode in `make test`, many more in `make test-slow`. The
product runs alone here: the fuzzer starts executions, control commands, exports and
rebuilds.

Operations are driven through Hypothesis directly (``APIOperation.as_strategy``):
schemathesis' pytest plugin reads a pytest internal that pytest 9 removed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.e2e.conftest import launch


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    p = launch(tmp_path_factory.mktemp("fuzzed"))
    try:
        p.wait_ready()
        yield schemathesis.openapi.from_url(f"{p.base_url}/openapi.json")
    finally:
        p.stop()


def _check(case: schemathesis.Case) -> None:
    response = case.call(timeout=30)
    where = f"{case.method} {case.formatted_path} -> {response.status_code}"
    assert response.status_code < 500, f"{where}: {response.text[:500]}"
    assert "Traceback" not in response.text, where
    if response.status_code >= 400:
        body = response.json()
        assert body["success"] is False and body["data"] is None, where
        assert isinstance(body["error"]["code"], str) and body["error"]["message"], where


# Valid changes to these would throttle every later request of the run (a rate limit of
# 0.001/s, a 1-byte body cap): only their invalid bodies are generated.
INVALID_ONLY = {("PUT", "/api/v1/admin/limits")}


def _fuzz(schema: schemathesis.BaseSchema, examples: int) -> int:
    operations, invalid_only = 0, set()
    for result in schema.get_all_operations():
        operation = result.ok()
        modes = [GenerationMode.NEGATIVE]
        key = (operation.method.upper(), operation.path)
        if key in INVALID_ONLY:
            invalid_only.add(key)
        else:
            modes.insert(0, GenerationMode.POSITIVE)
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            def run(case: schemathesis.Case) -> None:
                _check(case)

            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to get wrong (no inputs)
        operations += 1
    assert invalid_only == INVALID_ONLY  # the schema still has them: the rule holds
    return operations


def test_no_input_gets_a_5xx_or_a_trace(api_schema: schemathesis.BaseSchema) -> None:
    assert _fuzz(api_schema, 3) >= 30  # every operation of the API was tried


@pytest.mark.slow
def test_no_input_gets_a_5xx_or_a_trace_deeper(api_schema: schemathesis.BaseSchema) -> None:
    assert _fuzz(api_schema, 20) >= 30
