"""Orchestrated executions against a real local HTTP service: branches, retries, failure
classes, stop, and durable timers across a worker SIGKILL. Call counts are exact."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Product, wait_for
from tests.e2e.plans import detail, finished, new_eid, start, steps_of
from tests.http_stub import Stub


def test_branches_and_retries_call_each_endpoint_the_exact_number_of_times(
    api: httpx.Client, service: Stub
):
    eid = new_eid("orch")
    url = service.base_url
    start(api, eid, [
        {"id": "start", "type": "start"},
        {"id": "fetch", "type": "api_call", "system": "ERP", "dependsOn": ["start"],
         "config": {"url": f"{url}/json/{eid}?date={{{{ input.date }}}}",
                    "headers": {"Authorization": "Bearer s3cret"},
                    "output_mapping": {"n": "data.count"}}},
        {"id": "check", "type": "condition", "dependsOn": ["fetch"],
         "config": {"expression": "fetch.n >= 1", "true_path": ["post"],
                    "false_path": ["never"]}},
        {"id": "post", "type": "api_call", "system": "FIN", "dependsOn": ["check"],
         "config": {"method": "POST", "url": f"{url}/flaky/{eid}",
                    "body": {"n": "{{ fetch.n }}", "order": "{{ fetch.data.id }}"}},
         "retry": {"max_retries": 3, "initial_delay": 0.2, "max_delay": 1}},
        {"id": "never", "type": "api_call", "dependsOn": ["check"],
         "config": {"url": f"{url}/json/never/{eid}"}},
        {"id": "summary", "type": "transform", "dependsOn": ["post", "never"],
         "config": {"mapping": {"posted": "{{ post.status }}", "n": "{{ fetch.n }}"}}},
        {"id": "end", "type": "end", "dependsOn": ["summary"]},
    ], inputs={"date": "2025-09-01"})  # fmt: skip
    got = finished(api, eid)
    assert got["status"] == "succeeded", got
    assert service.count(f"/json/{eid}") == 1
    assert service.count(f"/flaky/{eid}") == 3  # 503, 503, 200
    assert service.count(f"/json/never/{eid}") == 0  # the branch not taken
    assert service.keys(f"/flaky/{eid}") == [f"{eid}/post/{n}" for n in (1, 2, 3)]
    assert json.loads(service.calls(f"/flaky/{eid}")[-1].body) == {"n": 3, "order": "A1"}
    steps = steps_of(got)
    assert {k: v["status"] for k, v in steps.items()} == {
        "start": "succeeded", "fetch": "succeeded", "check": "succeeded", "post": "succeeded",
        "never": "skipped", "summary": "succeeded", "end": "succeeded"}  # fmt: skip
    assert steps["post"]["attempts"] == 3
    assert steps["fetch"]["output"]["status"] == 200 and steps["fetch"]["output"]["n"] == 3
    assert steps["summary"]["output"] == {"posted": 200, "n": 3}
    assert got["progress"] == 1.0

    kinds = [e["event_type"] for e in api.get(f"/api/v1/executions/{eid}/events",
                                              params={"limit": 1000}).json()["data"]["items"]
             if e["step_id"] == "post"]  # fmt: skip
    assert kinds.count("step_retry_scheduled") == 2 and kinds.count("step_failed") == 2

    logs = api.get(f"/api/v1/executions/{eid}/logs", params={"limit": 1000}).json()["data"]
    lines = [(x["step_id"], x["kind"]) for x in logs["items"]]
    assert ("fetch", "input") in lines and ("fetch", "output") in lines
    assert lines.count(("post", "error")) == 2
    text = str(logs)
    assert "s3cret" not in text and "***" in text
    errors = api.get(f"/api/v1/executions/{eid}/logs", params={"level": "error"}).json()["data"]
    assert {x["step_id"] for x in errors["items"]} == {"post"}


def test_client_errors_fail_at_once_and_hanging_calls_time_out(
    api: httpx.Client, service: Stub
):
    bad, hang = new_eid("bad"), new_eid("hang")
    retry = {"max_retries": 3, "initial_delay": 0.1}
    start(api, bad, [{"id": "call", "type": "api_call", "retry": retry,
                       "config": {"url": f"{service.base_url}/status/400/{bad}"}}])
    start(api, hang, [{"id": "call", "type": "api_call", "timeout": 1,
                        "config": {"url": f"{service.base_url}/slow/{hang}?s=5"}}])
    got = finished(api, bad)
    assert got["status"] == "failed"
    assert service.count(f"/status/400/{bad}") == 1  # a 400 is not retried
    step = steps_of(got)["call"]
    assert step["attempts"] == 1 and "400" in step["error"]
    got = finished(api, hang)
    assert got["status"] == "failed" and steps_of(got)["call"]["error_type"] == "Timeout"
    assert got["error_type"] == "Timeout"


def test_stop_abandons_the_running_step_and_names_it(api: httpx.Client, service: Stub):
    eid = new_eid("stop")
    start(api, eid, [
        {"id": "first", "type": "api_call", "config": {"url": f"{service.base_url}/json/{eid}"}},
        {"id": "wait", "type": "delay", "dependsOn": ["first"], "config": {"seconds": 60}},
        {"id": "last", "type": "api_call", "dependsOn": ["wait"],
         "config": {"url": f"{service.base_url}/json/never/{eid}"}},
    ])  # fmt: skip
    wait_for(lambda: detail(api, eid).get("current_steps") == ["wait"])
    r = api.post(f"/api/v1/executions/{eid}/stop", json={"reason": "not today"})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["status"] == "stopped"
    assert r.json()["data"]["stopped_at_steps"] == ["wait"]
    got = wait_for(lambda: (d := detail(api, eid))["status"] == "stopped" and d)
    assert got["stopped_at_steps"] == ["wait"] and got["current_steps"] == []
    again = api.post(f"/api/v1/executions/{eid}/stop")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_finished"
    assert api.post("/api/v1/executions/nope_123/stop").status_code == 404
    assert service.count(f"/json/never/{eid}") == 0


def test_invalid_orchestrated_starts_are_refused_whole_and_nothing_is_journaled(
    api: httpx.Client,
):
    eid = new_eid("invalid")
    r = api.post("/api/v1/executions", json={"execution_id": eid})
    assert r.status_code == 422 and "plan" in r.json()["error"]["message"]
    r = api.post("/api/v1/executions", json={
        "execution_id": eid, "environment": "qa", "timeoutSec": 5, "inputs": {"n": "x"},
        "plan": {"steps": [{"id": "a", "type": "api_call", "inputsSpec": {"n": "integer",
                                                                          "d": "date"},
                            "config": {"url": "http://127.0.0.1:9/x"}}]}})  # fmt: skip
    assert r.status_code == 422
    fields = {d["field"] for d in r.json()["error"]["details"]}
    assert fields == {"environment", "timeoutSec", "inputs.n", "inputs.d"}
    r = api.post("/api/v1/executions", json={"execution_id": eid, "plan": {"steps": [
        {"id": "l", "type": "loop", "config": {"body": ["l2"]}}, {"id": "l2"}]}})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["step_id"] == "l"
    assert api.get(f"/api/v1/executions/{eid}").status_code == 404


@pytest.mark.slow  # two worker kills, ~25 s each: in make test-slow with the other faults
@pytest.mark.parametrize("phase", ["delay", "backoff"])
def test_timers_survive_a_worker_sigkill_and_no_finished_step_runs_again(
    api: httpx.Client, service: Stub, product: Product, phase: str
):
    eid = new_eid(f"kill_{phase}")
    url = service.base_url
    wait: dict[str, Any] = (
        {"id": "wait", "type": "delay", "dependsOn": ["first"], "config": {"seconds": 3}}
        if phase == "delay" else
        {"id": "wait", "type": "api_call", "dependsOn": ["first"],
         "config": {"url": f"{url}/flaky/{eid}"},
         "retry": {"max_retries": 3, "initial_delay": 2, "max_delay": 3}}
    )  # fmt: skip
    start(api, eid, [
        {"id": "first", "type": "api_call", "config": {"url": f"{url}/json/{eid}"}}, wait,
        {"id": "last", "type": "api_call", "dependsOn": ["wait"],
         "config": {"url": f"{url}/json/{eid}/last"}},
    ])  # fmt: skip
    expected = "running" if phase == "delay" else "retrying"
    wait_for(lambda: steps_of(detail(api, eid)).get("wait", {}).get("status") == expected,
             timeout=30)
    [worker] = product.children("runledger.cli worker")
    os.kill(worker, signal.SIGKILL)
    got = finished(api, eid, timeout=90)
    assert got["status"] == "succeeded", got
    assert service.count(f"/json/{eid}") == 1  # the step that had succeeded is not called again
    assert service.count(f"/json/{eid}/last") == 1
    if phase == "backoff":
        assert service.count(f"/flaky/{eid}") == 3
