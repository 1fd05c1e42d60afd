"""Parallel branches, loops and sub-executions run by the real product against a local
HTTP service: outputs, qualified iteration steps, the child linked both ways, exact call
counts, retry of only the failed iteration, and a parent's stop reaching its child."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import wait_for
from tests.e2e.plans import detail, finished, new_eid, reaches, start, steps_of
from tests.http_stub import Stub


def test_a_plan_with_a_parallel_a_loop_and_a_sub_execution_runs_each_once(
    api: httpx.Client, service: Stub
):
    eid, url = new_eid("comp"), service.base_url
    start(api, eid, [
        {"id": "fetch", "type": "api_call", "config": {"url": f"{url}/json/{eid}/fetch"}},
        {"id": "fan", "type": "parallel", "dependsOn": ["fetch"],
         "config": {"branches": ["a", "b", "c"], "max_concurrent": 2}},
        {"id": "a", "type": "api_call", "config": {"url": f"{url}/json/{eid}/a"}},
        {"id": "b", "type": "api_call", "config": {"url": f"{url}/flaky/{eid}/b"},
         "retry": {"max_retries": 3, "initial_delay": 0.1, "max_delay": 0.5}},
        {"id": "c", "type": "api_call", "config": {"url": f"{url}/json/{eid}/c"}},
        {"id": "each", "type": "loop", "dependsOn": ["fan"],
         "config": {"items": "{{ fetch.data.items }}", "body": ["get"]}},
        {"id": "get", "type": "api_call",
         "config": {"url": f"{url}/json/{eid}/item/{{{{ loop.item.id }}}}?i={{{{ loop.index }}}}"}},
        {"id": "sub", "type": "sub_execution", "dependsOn": ["each"],
         "config": {"inputs": {"n": "{{ fetch.data.count }}"}, "plan": {"steps": [
             {"id": "charge", "type": "api_call",
              "config": {"url": f"{url}/json/{eid}/charge?n={{{{ input.n }}}}"}}]}}},
        {"id": "end", "type": "end", "dependsOn": ["sub"]},
    ], workflow_id=f"wf_{eid}")  # fmt: skip
    got = finished(api, eid)
    assert got["status"] == "succeeded", got
    counts = {p: service.count(f"/json/{eid}/{p}") for p in
              ("fetch", "a", "c", "item/a", "item/b", "charge")}  # fmt: skip
    assert counts == dict.fromkeys(counts, 1)
    assert service.count(f"/flaky/{eid}/b") == 3  # 503, 503, 200: retried inside the branch
    steps = steps_of(got)
    assert set(steps) == {"fetch", "fan", "a", "b", "c", "each", "get[0]", "get[1]", "sub",
                          "end"}  # fmt: skip
    assert set(steps["fan"]["output"]) == {"a", "b", "c"}
    assert steps["each"]["output"]["iterations"] == 2
    assert [r["get"]["data"]["query"] for r in steps["each"]["output"]["results"]] == [
        {"i": ["0"]}, {"i": ["1"]}]
    child_id = steps["sub"]["child_execution_id"]
    assert got["child_executions"] == [child_id]
    child = wait_for(lambda: (r := api.get(f"/api/v1/executions/{child_id}")).status_code == 200
                     and r.json()["data"])  # fmt: skip
    assert child["parent_execution_id"] == eid and child["status"] == "succeeded"
    assert steps["sub"]["output"]["outputs"]["charge"]["data"]["query"] == {"n": ["3"]}

    # Records keep each iteration; statistics and search count them as the body step.
    records = api.get("/api/v1/tracking/records", params={"execution_id": eid}).json()["data"]
    assert {"get[0]", "get[1]"} <= {r["step_id"] for r in records["items"]}
    stats = api.get(f"/api/v1/stats/workflows/wf_{eid}").json()["data"]
    slowest = {s["step_id"]: s for s in stats["slowest_steps"]}
    assert "get" in slowest and "get[0]" not in slowest and slowest["get"]["runs"] == 1
    found = api.get("/api/v1/executions", params={"step_id": "get", "workflow_id": f"wf_{eid}"})
    assert [x["execution_id"] for x in found.json()["data"]["items"]] == [eid]


def test_retry_runs_only_the_failed_iteration_of_a_loop(api: httpx.Client, service: Stub):
    eid, url = new_eid("loopretry"), service.base_url
    start(api, eid, [
        {"id": "each", "type": "loop", "config": {"items": ["x", "y", "z"], "body": ["get"]}},
        {"id": "get", "type": "api_call", "config": {
            "url": f"{url}/{{{{ 'flaky' if loop.item == 'y' else 'json' }}}}/{eid}/"
                   "{{ loop.item }}"}},
    ])  # fmt: skip
    for attempt in (1, 2):
        got = wait_for(lambda n=attempt: (d := detail(api, eid)).get("status") == "failed"
                       and steps_of(d)["get[1]"]["attempts"] == n and d)  # fmt: skip
        assert steps_of(got)["get[1]"]["status"] == "failed" and "get[2]" not in steps_of(got)
        assert service.count(f"/flaky/{eid}/y") == attempt
        r = api.post(f"/api/v1/executions/{eid}/retry")
        assert r.status_code == 200, r.text
    got = wait_for(lambda: (d := detail(api, eid)).get("status") == "succeeded" and d)
    assert got["status"] == "succeeded", got
    assert service.count(f"/json/{eid}/x") == 1 and service.count(f"/json/{eid}/z") == 1
    assert service.count(f"/flaky/{eid}/y") == 3
    assert steps_of(got)["get[1]"]["attempts"] == 3


def test_stopping_a_parent_stops_its_child(api: httpx.Client):
    eid = new_eid("parent")
    start(api, eid, [{"id": "sub", "type": "sub_execution", "config": {"plan": {"steps": [
        {"id": "wait", "type": "delay", "config": {"seconds": 120}}]}}}])  # fmt: skip
    child_id = wait_for(lambda: (detail(api, eid).get("child_executions") or [None])[0])
    wait_for(lambda: (r := api.get(f"/api/v1/executions/{child_id}")).status_code == 200
             and r.json()["data"].get("current_steps") == ["wait"])  # fmt: skip
    r = api.post(f"/api/v1/executions/{eid}/stop")
    assert r.status_code == 200, r.text
    child = reaches(api, child_id, "stopped")
    assert child["stopped_at_steps"] == ["wait"]
    assert steps_of(detail(api, eid))["sub"]["status"] == "stopped"
