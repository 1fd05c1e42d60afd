"""Plug-ins against the real product: a step executor and hooks installed as entry points
(tests/plugins, on the product's PYTHONPATH), and a step type registered over HTTP."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Product, launch, wait_for
from tests.e2e.plans import finished, new_eid, start, steps_of
from tests.http_stub import Stub

PLUGINS = Path(__file__).parent.parent / "plugins"


@pytest.fixture(scope="module")
def hook_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hooks") / "calls.jsonl"


@pytest.fixture(scope="module")
def plugged(tmp_path_factory: pytest.TempPathFactory, hook_log: Path) -> Iterator[Product]:
    path = os.pathsep.join(p for p in (str(PLUGINS), os.environ.get("PYTHONPATH")) if p)
    p = launch(tmp_path_factory.mktemp("plugged"), PYTHONPATH=path,
               RUNLEDGER_TEST_HOOK_LOG=str(hook_log))  # fmt: skip
    try:
        p.wait_ready()
        yield p
    finally:
        p.stop()


@pytest.fixture
def api(plugged: Product) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=plugged.base_url, timeout=30) as client:
        yield client


def calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_an_entry_point_executor_runs_its_steps_and_hooks_see_the_execution(
    api: httpx.Client, hook_log: Path
):
    types = {t["type"]: t for t in api.get("/api/v1/step-types").json()["data"]["items"]}
    assert types["shout"]["source"] == "plugin"
    assert types["shout"]["config_schema"]["required"] == ["text"]
    assert types["api_call"]["source"] == "builtin"

    bad = api.post("/api/v1/plans/validate", json={"plan": {"steps": [
        {"id": "s", "type": "shout", "config": {"txt": "x"}}]}})
    assert bad.status_code == 422 and "config.text" in bad.text

    eid, wid = new_eid("plug"), new_eid("wf_plug")
    start(api, eid, [{"id": "s", "type": "shout", "config": {"text": "{{ input.word }}"}}],
          inputs={"word": "hello"}, workflow_id=wid)
    done = finished(api, eid)
    assert done["status"] == "succeeded", done
    assert steps_of(done)["s"]["output"] == {"text": "HELLO"}

    expected = [("before_execution", None), ("on_step", "step_scheduled"),
                ("on_step", "step_succeeded"), ("after_execution", None)]
    seen = wait_for(lambda: [c for c in calls(hook_log) if c.get("workflow_id") == wid
                             or c.get("execution_id") == eid] if any(
        c["hook"] == "after_execution" and c.get("execution_id") == eid
        for c in calls(hook_log)) else None, timeout=30)  # fmt: skip
    assert seen[0] == {"hook": "before_execution", "workflow_id": wid,
                       "input_data": {"word": "hello"}}  # fmt: skip
    assert seen[-1] == {"hook": "after_execution", "execution_id": eid, "status": "succeeded"}
    got = [(c["hook"], c.get("event_type")) for c in seen]
    assert [g for g in got if g in expected] == [g for g in expected if g in got]
    assert ("on_step", "step_succeeded") in got


def test_a_step_type_registered_over_http_runs_at_its_url(api: httpx.Client, service: Stub):
    url = service.base_url
    refused = api.post("/api/v1/step-types", json={
        "type_name": "CUSTOM_PROCESSOR", "description": "自定义数据处理节点",
        "config_schema": {"processor_type": "string", "parameters": "object"},
        "execution_handler": "custom_processor_handler"})  # seed 003's request
    assert refused.status_code == 422 and "give url" in refused.text
    assert api.post("/api/v1/step-types", json={"name": "api_call", "url": url}).status_code == 409

    made = api.post("/api/v1/step-types", json={
        "type_name": "CUSTOM_PROCESSOR", "description": "自定义数据处理节点",
        "config_schema": {"processor_type": "string", "parameters": "object"},
        "url": f"{url}/json/custom"})
    assert made.status_code == 201, made.text
    listed = {t["type"]: t for t in api.get("/api/v1/step-types").json()["data"]["items"]}
    assert listed["custom_processor"]["source"] == "http"
    assert listed["custom_processor"]["config_schema"]["properties"]["processor_type"] == {
        "type": "string"}

    bad = api.post("/api/v1/plans/validate", json={"plan": {"steps": [
        {"id": "p", "type": "CUSTOM_PROCESSOR", "config": {"processor_type": 7}}]}})
    assert bad.status_code == 422 and "processor_type" in bad.text

    eid = new_eid("http_type")
    start(api, eid, [{"id": "p", "type": "CUSTOM_PROCESSOR",
                      "config": {"processor_type": "dedupe", "parameters": {"n": 1}}}])
    done = finished(api, eid)
    assert done["status"] == "succeeded", done
    sent = json.loads(steps_of(done)["p"]["output"]["body"])
    assert sent["config"] == {"processor_type": "dedupe", "parameters": {"n": 1}}
    assert (sent["execution_id"], sent["step_id"], sent["type"]) == (
        eid, "p", "custom_processor")
    [call] = service.calls("/json/custom")[-1:]
    assert call.headers["Idempotency-Key"] == sent["task_id"]

    assert api.delete("/api/v1/step-types/custom_processor").status_code == 200
    gone = api.post("/api/v1/plans/validate", json={"plan": {"steps": [
        {"id": "p", "type": "custom_processor", "config": {}}]}})
    assert gone.status_code == 422 and "unknown step type" in gone.text
