"""Saved workflows against the real product: versions, node-by-node editing as seed 003's
curl examples do it, import/export, plan generation, and running a saved workflow."""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.conftest import wait_for
from tests.e2e.plans import finished, new_eid, steps_of
from tests.http_stub import Stub

WF = "/api/v1/workflows"


def data(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()["data"]


def test_versions_tags_and_an_export_import_round_trip(api: httpx.Client):
    wid = new_eid("wf_crud")
    made = data(api.post(WF, json={
        "id": wid, "name": "示例工作流", "description": "这是一个示例工作流", "version": "1.0",
        "config": {"timeout": 300, "retry_count": 3}, "tags": ["demo", "example"]}), 201)
    assert (made["version"], made["version_label"], made["status"]) == (1, "1.0", "draft")
    assert api.post(WF, json={"id": wid, "name": "again"}).status_code == 409

    steps = [{"id": "a", "type": "api_call", "config": {"url": "http://a"}},
             {"id": "b", "type": "transform", "dependsOn": ["a"],
              "config": {"mapping": {"x": "1"}}}]
    v2 = data(api.put(f"{WF}/{wid}", json={"steps": steps}))
    assert (v2["version"], v2["status"], v2["name"], v2["tags"]) == (
        2, "active", "示例工作流", ["demo", "example"])  # fields not given stay
    v3 = data(api.put(f"{WF}/{wid}", json={"tags": ["nightly"], "is_active": False}))
    assert (v3["version"], v3["status"]) == (3, "inactive")

    assert data(api.get(f"{WF}/{wid}", params={"version": 1}))["steps"] is None
    assert data(api.get(f"{WF}/{wid}", params={"version": 2}))["steps"][1]["dependsOn"] == ["a"]
    current = data(api.get(f"{WF}/{wid}"))
    assert (current["version"], current["valid"], current["problems"]) == (3, True, [])
    assert [v["version"] for v in data(api.get(f"{WF}/{wid}/versions"))["items"]] == [1, 2, 3]
    assert api.get(f"{WF}/{wid}", params={"version": 9}).status_code == 404

    def listed(**params: str) -> list[str]:
        return [w["id"] for w in data(api.get(WF, params={"limit": 1000, **params}))["items"]]

    assert wid in listed(tag="nightly") and wid not in listed(tag="demo")
    assert wid in listed(name="示例") and wid not in listed(name="nothing-like-it")

    exported = api.get(f"{WF}/export", params={"ids": [wid]})
    assert "workflows.json" in exported.headers["content-disposition"]
    [doc] = data(exported)["workflows"]
    assert data(api.delete(f"{WF}/{wid}")) == {"id": wid, "deleted": True, "version": 4}
    assert api.get(f"{WF}/{wid}").status_code == 404 and wid not in listed()
    assert api.put(f"{WF}/{wid}", json={"name": "x"}).status_code == 404

    imported = data(api.post(f"{WF}/import", json={"workflows": [doc]}))
    assert imported == {"items": [{"id": wid, "version": 5}], "imported": 1}
    back = data(api.get(f"{WF}/{wid}"))
    keep = ("name", "description", "version_label", "config", "tags", "is_active", "steps",
            "nodes", "connections")  # fmt: skip
    assert {k: back[k] for k in keep} == {k: doc[k] for k in keep}


def seed_node(api: httpx.Client, wid: str, body: dict[str, Any]) -> Any:
    return data(api.post(f"{WF}/{wid}/nodes", json=body), 201)


def test_a_workflow_built_like_seed_003s_curl_examples_runs(api: httpx.Client, service: Stub):
    wid, url = new_eid("wf_seed"), service.base_url
    made = data(api.post(WF, json={"id": wid, "name": "示例工作流", "version": "1.0",
                                   "config": {"timeout": 300, "retry_count": 3},
                                   "tags": ["demo"]}), 201)  # fmt: skip
    assert made["status"] == "draft"
    refused = api.post(f"{WF}/{wid}/execute", json={"input_data": {}})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "workflow_draft"

    call = seed_node(api, wid, {
        "name": "API调用节点", "node_type": "API_CALL",
        "config": {"api_id": 1, "parameters": {"param1": "{{input.value}}"}, "timeout": 30},
        "position_x": 100, "position_y": 200, "description": "调用用户API"})
    assert (call["id"], call["version"]) == (1, 2)
    check = seed_node(api, wid, {"name": "条件判断", "node_type": "CONDITION", "config": {
        "condition": "{{input.score}} >= 60", "true_path": "通过处理", "false_path": "失败处理"}})
    ok_node = seed_node(api, wid, {"name": "通过处理", "node_type": "API_CALL",
                                   "config": {"url": f"{url}/json/{wid}/pass"}})
    no_node = seed_node(api, wid, {"name": "失败处理", "node_type": "API_CALL",
                                   "config": {"url": f"{url}/json/{wid}/fail"}})
    for src, dst, kind in ((1, 2, "SEQUENCE"), (2, 3, "CONDITIONAL_TRUE"),
                           (2, 4, "CONDITIONAL_FALSE")):
        conn = data(api.post(f"{WF}/{wid}/connections", json={
            "from_node_id": src, "to_node_id": dst, "connection_type": kind, "condition": None,
            "config": {"delay": 0}}), 201)  # fmt: skip
        assert conn["connection_type"] == kind
    bad = api.post(f"{WF}/{wid}/connections", json={"from_node_id": 1, "to_node_id": 99})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "to_node_id"

    # Seed 003's api_id names an API registry Runledger does not have.
    run = {"execution_name": "测试执行", "input_data": {"value": "test_data", "score": 75},
           "config": {"async": True, "timeout": 600}}
    refused = api.post(f"{WF}/{wid}/execute", json=run)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["details"][0]["node_id"] == call["id"]
    assert "give config.url" in refused.json()["error"]["message"]
    assert data(api.get(f"{WF}/{wid}"))["valid"] is False

    nodes = data(api.get(f"{WF}/{wid}"))["nodes"]
    nodes[0]["config"] = {"url": f"{url}/json/{wid}/call", "method": "POST",
                          "parameters": {"param1": "{{input.value}}"}, "timeout": 30}
    assert data(api.put(f"{WF}/{wid}", json={"nodes": nodes}))["version"] == 9
    assert data(api.get(f"{WF}/{wid}"))["valid"] is True
    started = data(api.post(f"{WF}/{wid}/execute", json=run), 202)
    assert (started["workflow_id"], started["version"]) == (wid, 9)
    done = finished(api, started["execution_id"])
    assert done["status"] == "succeeded", done
    steps = steps_of(done)
    assert steps[f"node_{ok_node['id']}"]["status"] == "succeeded"
    assert steps[f"node_{no_node['id']}"]["status"] == "skipped"
    assert service.count(f"/json/{wid}/call") == 1 and service.count(f"/json/{wid}/fail") == 0
    assert done["workflow_id"] == wid
    assert check["id"] == 2

    # The plan is the same each time; once the workflow has run, it carries an estimate.
    def generated(**body: Any) -> httpx.Response:
        return api.post("/api/v1/plans/generate", json={"workflow_id": wid, **body})

    first, second = data(generated()), data(generated())
    assert first["plan"] == second["plan"] and first["version"] == 9
    assert [s["id"] for s in first["plan"]["steps"]] == ["node_1", "node_2", "node_3", "node_4"]
    estimate = wait_for(lambda: data(generated())["estimated_duration_ms"], timeout=30)
    assert estimate > 0
    older = generated(version=8)  # before the url replaced api_id
    assert older.status_code == 422 and "api_id" in older.text


def test_inactive_and_invalid_workflows_do_not_run(api: httpx.Client):
    wid = new_eid("wf_bad")
    data(api.post(WF, json={"id": wid, "name": "bad", "is_active": False, "nodes": [
        {"id": 1, "name": "think", "node_type": "llm"},
        {"id": 2, "name": "form", "node_type": "input"}]}), 201)  # fmt: skip
    off = api.post(f"{WF}/{wid}/execute")
    assert off.status_code == 409 and off.json()["error"]["code"] == "workflow_inactive"
    data(api.put(f"{WF}/{wid}", json={"is_active": True}))
    invalid = api.post(f"{WF}/{wid}/execute")
    assert invalid.status_code == 422
    named = {(p["node_id"], p["problem"].split(" (")[0]) for p in
             invalid.json()["error"]["details"]}  # fmt: skip
    assert named == {(1, "unknown step type 'llm'"), (2, "unknown step type 'input'")}
    generated = api.post("/api/v1/plans/generate", json={"definition": {"nodes": [
        {"id": 1, "name": "think", "node_type": "LLM"}]}})
    assert generated.status_code == 422 and "type 'llm'" in generated.json()["error"]["message"]
    assert api.post("/api/v1/plans/generate", json={}).status_code == 422


def test_a_sub_execution_runs_a_saved_workflow(api: httpx.Client, service: Stub):
    child, url = new_eid("wf_child"), service.base_url
    data(api.post(WF, json={"id": child, "name": "child", "steps": [
        {"id": "k", "type": "api_call", "config": {"url": f"{url}/json/{child}/k"}}]}), 201)
    eid = new_eid("sub_wf")
    r = api.post("/api/v1/executions", json={"execution_id": eid, "plan": {"steps": [
        {"id": "sub", "type": "sub_execution", "config": {"workflow_id": child}}]}})
    assert r.status_code == 202, r.text
    done = finished(api, eid)
    assert done["status"] == "succeeded", done
    assert service.count(f"/json/{child}/k") == 1

    # A workflow that runs itself through a sub_execution is refused before it starts.
    data(api.put(f"{WF}/{child}", json={"steps": [
        {"id": "again", "type": "sub_execution", "config": {"workflow_id": child}}]}))
    looped = api.post(f"{WF}/{child}/execute")
    assert looped.status_code == 422 and "cycle" in looped.json()["error"]["message"]
    missing = api.post("/api/v1/plans/validate", json={"plan": {"steps": [
        {"id": "s", "type": "sub_execution", "config": {"workflow_id": "no_such_wf"}}]}})
    assert missing.status_code == 422 and "no_such_wf" in missing.json()["error"]["message"]
