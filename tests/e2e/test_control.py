"""Steering orchestrated executions end to end, against a real local HTTP service whose
call counts are exact: pause, retry, rerun, input (HTTP and WebSocket), debug, and the
outcome of a command by id."""

from __future__ import annotations

import json
import time

import httpx
from websockets.sync.client import connect

from tests.e2e.conftest import Product, wait_for
from tests.e2e.plans import detail, new_eid, reaches, start, steps_of
from tests.http_stub import Stub


def test_no_call_while_paused_and_resume_continues(api: httpx.Client, service: Stub):
    eid, url = new_eid("pause"), service.base_url
    start(api, eid, [
        {"id": "a", "type": "api_call", "config": {"url": f"{url}/json/{eid}/a"}},
        {"id": "wait", "type": "delay", "dependsOn": ["a"], "config": {"seconds": 1}},
        {"id": "b", "type": "api_call", "dependsOn": ["wait"],
         "config": {"url": f"{url}/json/{eid}/b"}},
    ])  # fmt: skip
    wait_for(lambda: steps_of(detail(api, eid)).get("wait", {}).get("status") == "running")
    r = api.post(f"/api/v1/executions/{eid}/pause")
    assert r.status_code == 200 and r.json()["data"]["status"] == "paused", r.text
    time.sleep(3)  # the delay fires meanwhile: recorded, but `b` does not start
    assert steps_of(detail(api, eid))["wait"]["status"] == "succeeded"
    assert service.count(f"/json/{eid}/b") == 0
    again = api.post(f"/api/v1/executions/{eid}/pause")
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_running"
    r = api.post(f"/api/v1/executions/{eid}/resume")
    assert r.status_code == 200 and r.json()["data"]["status"] == "running"
    reaches(api, eid, "succeeded")
    assert service.count(f"/json/{eid}/a") == 1 and service.count(f"/json/{eid}/b") == 1


def test_retry_calls_only_the_failed_endpoint(api: httpx.Client, service: Stub):
    eid, url = new_eid("retry"), service.base_url
    start(api, eid, [
        {"id": "a", "type": "api_call", "config": {"url": f"{url}/json/{eid}/a"}},
        {"id": "b", "type": "api_call", "dependsOn": ["a"],
         "config": {"url": f"{url}/flaky/{eid}"}},
        {"id": "c", "type": "api_call", "dependsOn": ["b"],
         "config": {"url": f"{url}/json/{eid}/c"}},
    ])  # fmt: skip
    failed = reaches(api, eid, "failed")
    assert steps_of(failed)["c"]["status"] == "blocked"
    for n in (1, 2):
        r = api.post(f"/api/v1/executions/{eid}/retry", headers={"Idempotency-Key": f"k{n}"})
        assert r.status_code == 200 and r.json()["data"]["status"] == "running", r.text
        # The same key again is the same command: nothing new happens.
        assert api.post(f"/api/v1/executions/{eid}/retry",
                        headers={"Idempotency-Key": f"k{n}"}).status_code in (200, 202)
        before = failed["last_seq"]
        done = wait_for(lambda before=before: (d := detail(api, eid))["status"] in (
            "failed", "succeeded") and d["last_seq"] > before and d)  # fmt: skip
        failed = done
    assert done["status"] == "succeeded"
    assert service.count(f"/json/{eid}/a") == 1  # never again
    assert service.count(f"/flaky/{eid}") == 3  # 503, retry: 503, retry: 200
    assert service.count(f"/json/{eid}/c") == 1
    assert steps_of(done)["b"]["attempts"] == 3


def test_rerun_from_a_middle_step_keeps_the_earlier_outputs(api: httpx.Client, service: Stub):
    eid, url = new_eid("rerun"), service.base_url
    start(api, eid, [
        {"id": "a", "type": "api_call", "config": {"url": f"{url}/json/{eid}/a"}},
        {"id": "b", "type": "api_call", "dependsOn": ["a"], "inputsSpec": {"n": "integer"},
         "config": {"method": "POST", "url": f"{url}/json/{eid}/b",
                    "body": {"n": "{{ input.n }}", "from_a": "{{ a.data.id }}"}}},
        {"id": "c", "type": "transform", "dependsOn": ["b"],
         "config": {"mapping": {"sent": "{{ b.data.body }}"}}},
    ], inputs={"n": 1})  # fmt: skip
    first = reaches(api, eid, "succeeded")
    r = api.post(f"/api/v1/executions/{eid}/rerun", json={"from_step": "b", "inputs": {"n": 2}})
    assert r.status_code == 200 and r.json()["data"]["status"] == "running", r.text
    done = wait_for(lambda: (d := detail(api, eid))["status"] == "succeeded"
                    and d["last_seq"] > first["last_seq"] and d)  # fmt: skip
    assert service.count(f"/json/{eid}/a") == 1
    assert [json.loads(c.body) for c in service.calls(f"/json/{eid}/b")] == [
        {"n": 1, "from_a": "A1"}, {"n": 2, "from_a": "A1"}]
    steps = steps_of(done)
    assert steps["a"]["output"] == steps_of(first)["a"]["output"]
    assert steps["b"]["attempts"] == 2
    bad = api.post(f"/api/v1/executions/{eid}/rerun", json={"from_step": "nope"})
    assert bad.status_code == 409 and bad.json()["error"]["code"] == "unknown_step"
    bad = api.post(f"/api/v1/executions/{eid}/rerun", json={"from_step": "b",
                                                           "inputs": {"n": "two"}})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "inputs.n"


def test_input_answers_a_waiting_step_over_http_and_websocket(
    api: httpx.Client, service: Stub, product: Product
):
    schema = {"type": "object", "required": ["approved"],
              "properties": {"approved": {"type": "boolean"}}}
    steps = [
        {"id": "ask", "type": "wait_input",
         "config": {"prompt": "approve?", "input_schema": schema, "timeout_seconds": 120}},
        {"id": "go", "type": "api_call", "dependsOn": ["ask"],
         "config": {"url": service.base_url + "/json/{{ execution.id }}/{{ ask.approved }}"}},
    ]  # fmt: skip
    http_eid, ws_eid = new_eid("input"), new_eid("wsinput")
    start(api, http_eid, steps)
    start(api, ws_eid, steps)
    for eid in (http_eid, ws_eid):
        wait_for(lambda eid=eid: detail(api, eid).get("current_steps") == ["ask"])
    bad = api.post(f"/api/v1/executions/{http_eid}/input",
                   json={"step_id": "ask", "data": {"approved": "yes"}})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["field"] == "data.approved"
    wrong = api.post(f"/api/v1/executions/{http_eid}/input", json={"step_id": "go", "data": {}})
    assert wrong.status_code == 409 and wrong.json()["error"]["code"] == "not_waiting"
    r = api.post(f"/api/v1/executions/{http_eid}/input",
                 json={"step_id": "ask", "data": {"approved": True}})
    assert r.status_code == 200, r.text
    reaches(api, http_eid, "succeeded")
    assert service.count(f"/json/{http_eid}/True") == 1
    late = api.post(f"/api/v1/executions/{http_eid}/input",
                    json={"step_id": "ask", "data": {"approved": False}})
    assert late.status_code == 409

    with connect(f"{product.ws_url}/ws/v1/executions/{ws_eid}?after_seq=0") as ws:
        ws.send(json.dumps({"type": "send_input", "step_id": "ask", "data": {"approved": 1}}))
        ws.send(json.dumps({"type": "send_input", "step_id": "ask",
                            "data": {"approved": False}}))  # fmt: skip
        answers = []  # one per send_input, in the order sent: they reach the worker so
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(answers) < 2:
            frame = json.loads(ws.recv(timeout=30))
            if frame.get("type") in ("error", "input_result"):
                answers.append(frame)
    assert [(f["type"], f.get("code") or f.get("status")) for f in answers] == [
        ("error", "invalid_input"), ("input_result", "running")]
    reaches(api, ws_eid, "succeeded")
    assert service.count(f"/json/{ws_eid}/False") == 1


def test_debug_runs_one_step_per_step_command(api: httpx.Client, service: Stub):
    eid, url = new_eid("debug"), service.base_url
    start(api, eid, [
        {"id": "a", "type": "api_call", "config": {"url": f"{url}/json/{eid}/a"}},
        {"id": "b", "type": "api_call", "dependsOn": ["a"],
         "config": {"url": f"{url}/json/{eid}/b"}},
        {"id": "c", "type": "api_call", "dependsOn": ["b"],
         "config": {"url": f"{url}/json/{eid}/c"}},
    ], debug=True)  # fmt: skip
    reaches(api, eid, "paused")
    time.sleep(1)
    assert service.count(f"/json/{eid}/a") == 0
    for n, step in enumerate("ab", 1):
        r = api.post(f"/api/v1/executions/{eid}/step")
        assert r.status_code == 200 and r.json()["data"]["status"] == "paused", r.text
        wait_for(lambda step=step: steps_of(detail(api, eid))[step]["status"] == "succeeded")
        time.sleep(0.5)
        assert [service.count(f"/json/{eid}/{s}") for s in "abc"] == [1] * n + [0] * (3 - n)
    r = api.post(f"/api/v1/executions/{eid}/resume")
    assert r.status_code == 200
    reaches(api, eid, "succeeded")
    assert service.count(f"/json/{eid}/c") == 1
    not_debug = api.post(f"/api/v1/executions/{eid}/step")
    assert not_debug.status_code == 409


def test_a_command_outcome_is_readable_by_id_and_tracked_executions_refuse_control(
    api: httpx.Client,
):
    eid = new_eid("tracked")
    assert api.post("/api/v1/executions", json={"mode": "tracked", "execution_id": eid}
                    ).status_code == 202  # fmt: skip
    wait_for(lambda: detail(api, eid).get("last_seq") == 1)
    r = api.post(f"/api/v1/executions/{eid}/pause", headers={"Idempotency-Key": "p1"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_orchestrated"
    cid = r.json()["error"]["details"][0]["command_id"]
    outcome = wait_for(lambda: (o := api.get(f"/api/v1/commands/{cid}").json()["data"])[
        "projected"] and o)
    assert outcome["status"] == "rejected" and outcome["reason"] == "not_orchestrated"
    assert outcome["action"] == "pause" and outcome["execution_id"] == eid
    assert api.get("/api/v1/commands/cmd_nope").status_code == 404
    assert api.post("/api/v1/executions/nope_1/pause").status_code == 404
