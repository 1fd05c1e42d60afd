"""The seed documents' own paths against the running product (DESIGN.md "The origin
documents' paths and words"): each alias answers like the canonical route it stands for
(same status, same data for the same request); seed 001's status and log words."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from websockets.sync.client import connect

from tests.e2e.conftest import Product, wait_for
from tests.e2e.plans import detail, finished, new_eid, reaches, steps_of

ORCH = "/api/orchestration"
V1 = "/api/v1"
CMD = re.compile(r"cmd_[0-9a-f]+")

# Seed 000's `Plan (最小子集)` as written there: step type `api`, no config (so not runnable).
SEED_PLAN = {"id": "plan_001", "name": "跨系统对账", "steps": [
    {"id": "fetch_a", "type": "api", "system": "ERP", "module": "Orders",
     "inputsSpec": {"date": "string"}, "dependsOn": []}], "estimated_duration_ms": 3500}
TRANSFORM = {"id": "p_seed", "steps": [
    {"id": "shape", "type": "transform", "system": "ERP", "module": "Orders",
     "inputsSpec": {"date": "date"}, "config": {"mapping": {"day": "{{ input.date }}"}}},
    {"id": "done", "type": "transform", "system": "FIN", "dependsOn": ["shape"],
     "config": {"mapping": {"ok": "yes"}}}]}
ASK = {"id": "p_ask", "steps": [
    {"id": "ask", "type": "wait_input",
     "config": {"prompt": "go?", "input_schema": {"type": "object"}, "timeout_seconds": 300}},
    {"id": "after", "type": "transform", "dependsOn": ["ask"],
     "config": {"mapping": {"ok": "yes"}}}]}


def answer(r: httpx.Response, *eids: str) -> tuple[int, Any]:
    """Status and body, with the given execution ids and any command id made neutral."""
    text = CMD.sub("<cmd>", r.text)
    for eid in eids:
        text = text.replace(eid, "<eid>")
    return r.status_code, json.loads(text)


def same(alias: httpx.Response, canonical: httpx.Response, *eids: str) -> tuple[int, Any]:
    got, want = answer(alias, *eids), answer(canonical, *eids)
    assert got == want, (alias.request.url, got, want)
    return got


def seed_status(api: httpx.Client, eid: str) -> dict[str, Any]:
    r = api.get(f"{V1}/execute/{eid}/status")
    assert r.status_code == 200 and r.json()["success"] is True, r.text
    return r.json()["data"]


def test_the_seed_paths_are_in_the_openapi_schema_naming_their_seed(api: httpx.Client):
    paths = api.get("/openapi.json").json()["paths"]
    seeds = {f"{ORCH}/plan/generate": ("post", "000"), f"{ORCH}/plan/validate": ("post", "000"),
             f"{ORCH}/execute": ("post", "000"), f"{V1}/execute": ("post", "001"),
             f"{ORCH}/execute/validate-inputs": ("post", "000"),
             f"{ORCH}/tracking/summary": ("get", "000"),
             f"{ORCH}/tracking/records": ("get", "000"),
             f"{ORCH}/tracking/export": ("post", "000"),
             **{f"{V1}/execute/{{execution_id}}/{a}": ("post", "001")
                for a in ("pause", "resume", "stop")},
             f"{V1}/execute/{{execution_id}}/status": ("get", "001"),
             f"{V1}/execute/{{execution_id}}/logs": ("get", "001")}  # fmt: skip
    for path, (method, seed) in seeds.items():
        op = paths[path][method]
        assert op["tags"] == ["seed paths"], path
        assert op["description"].startswith(f"Seed {seed}'s `{method.upper()} {path}`"), path
    assert paths[f"{ORCH}/execute"]["post"]["responses"].keys() >= {"202", "422"}


def test_plan_validate_takes_the_canonical_body_and_seed_000s_bare_plan(api: httpx.Client):
    runnable = {"id": "ok", "steps": [{"id": "a", "type": "API", "config": {"url": "http://x"}},
                                      {"id": "b", "type": "transform", "dependsOn": ["a"],
                                       "config": {"mapping": {"ok": "yes"}}}]}
    broken = {"steps": [{"id": "a", "type": "teleport"}, {"id": "b", "dependsOn": ["x"]}]}
    for plan, status in ((runnable, 200), (broken, 422), (SEED_PLAN, None)):
        canonical = api.post(f"{V1}/plans/validate", json={"plan": plan})
        assert status is None or canonical.status_code == status, canonical.text
        same(api.post(f"{ORCH}/plan/validate", json={"plan": plan}), canonical)
        same(api.post(f"{ORCH}/plan/validate", json=plan), canonical)  # seed 000's bare plan
    assert api.post(f"{ORCH}/plan/validate", json=runnable).json() == {
        "success": True, "data": {"valid": True}, "error": None}
    # Bad input is a 422 naming the field (or a 400 for malformed JSON), as canonically.
    for body, field in (({"plan": {"steps": "many"}}, "plan.steps"), ({}, "plan"),
                        ({"steps": [{"type": "api"}]}, "plan.steps.0.id")):  # fmt: skip
        r = same(api.post(f"{ORCH}/plan/validate", json=body),
                 api.post(f"{V1}/plans/validate", json=body if "plan" in body or not body
                          else {"plan": body}))  # fmt: skip
        assert r[0] == 422 and field in [d["field"] for d in r[1]["error"]["details"]], r
    for path in (f"{ORCH}/plan/validate", f"{V1}/plans/validate"):
        bad = api.post(path, content=b'{"plan": ', headers={"content-type": "application/json"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "malformed_json"


def test_validate_inputs_also_reads_environment_from_seed_000s_inputs(api: httpx.Client):
    plan = {"steps": [{"id": "a", "inputsSpec": {"date": "date", "retry": "integer?"}}]}
    good = {"plan": plan, "inputs": {"date": "2025-09-01"}, "environment": "test",
            "timeoutSec": 60}
    bad = {"plan": plan, "inputs": {"retry": "x"}, "environment": "moon", "timeoutSec": 5}
    for body in (good, bad, {"inputs": "x"}, {"plan": plan, "timeout_sec": "soon"}):
        same(api.post(f"{ORCH}/execute/validate-inputs", json=body),
             api.post(f"{V1}/executions/validate-inputs", json=body))
    fields = [d["field"] for d in api.post(f"{ORCH}/execute/validate-inputs",
                                           json=bad).json()["error"]["details"]]
    assert sorted(fields) == ["environment", "inputs.date", "inputs.retry", "timeoutSec"]
    # Seed 000's `Inputs` example keeps the environment among the inputs.
    seed = {"plan": plan, "inputs": {"environment": "test", "date": "2025-09-01", "retry": 0}}
    r = same(api.post(f"{ORCH}/execute/validate-inputs", json=seed),
             api.post(f"{V1}/executions/validate-inputs", json={**seed, "environment": "test"}))
    assert r == (200, {"success": True, "data": {"valid": True}, "error": None})
    # An environment given outright wins over the one among the inputs.
    r = api.post(f"{ORCH}/execute/validate-inputs", json={**seed, "environment": "moon"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "environment"


def test_execute_then_track_export_monitor_and_status_through_seed_000_paths(
    api: httpx.Client, product: Product
):
    # The same request (same execution id, same Idempotency-Key) is the same command.
    eid = new_eid("seedexec")
    body = {"execution_id": eid, "plan": TRANSFORM, "inputs": {"date": "2025-09-01"},
            "environment": "test", "timeoutSec": 120}
    key = {"Idempotency-Key": f"k-{eid}"}
    canonical = api.post(f"{V1}/executions", json=body, headers=key)
    alias = api.post(f"{ORCH}/execute", json=body, headers=key)
    assert alias.status_code == canonical.status_code == 202
    assert alias.json() == canonical.json()
    assert alias.json()["data"]["execution_id"] == eid
    for bad in ({"execution_id": "x y", "plan": TRANSFORM}, {"inputs": {}},
                {"plan": TRANSFORM, "inputs": {"date": "someday"}, "environment": "test"}):
        r = same(api.post(f"{ORCH}/execute", json=bad), api.post(f"{V1}/executions", json=bad))
        assert r[0] == 422, r

    # Seed 000's way: environment among the inputs.
    seed_eid = new_eid("seedrun")
    r = api.post(f"{ORCH}/execute", json={"execution_id": seed_eid, "plan": TRANSFORM,
                                          "inputs": {"environment": "stage",
                                                     "date": "2025-09-01"}})
    assert r.status_code == 202 and r.json()["data"]["status"] == "pending", r.text
    done = finished(api, seed_eid)
    assert done["status"] == "succeeded" and done["environment"] == "stage"
    assert steps_of(done)["shape"]["output"] == {"day": "2025-09-01"}
    assert seed_status(api, seed_eid) == {
        "execution_id": seed_eid, "status": "completed", "current_node": None,
        "progress": 1.0, "message": done["message"] or None}
    finished(api, eid)

    query = {"execution_id": seed_eid}
    for what in ("summary", "records"):
        r = same(api.get(f"{ORCH}/tracking/{what}", params=query),
                 api.get(f"{V1}/tracking/{what}", params=query))
        assert r[0] == 200
    records = api.get(f"{ORCH}/tracking/records", params=query).json()["data"]["items"]
    assert sorted(rec["step_id"] for rec in records) == ["done", "shape"]
    summary = api.get(f"{ORCH}/tracking/summary", params=query).json()["data"]
    assert (summary["systems"], summary["modules"], summary["failed_steps"]) == (2, 1, 0)
    for bad in ({"status": "done"}, {"from": "yesterday"}):
        r = same(api.get(f"{ORCH}/tracking/records", params=bad),
                 api.get(f"{V1}/tracking/records", params=bad))
        assert r[0] == 422

    for fmt in ("json", "csv"):
        export = {"format": fmt, "kind": "records", "filters": {"execution_id": seed_eid}}
        a = api.post(f"{ORCH}/tracking/export", json=export)
        c = api.post(f"{V1}/tracking/export", json=export)
        assert a.status_code == c.status_code == 200 and a.content == c.content
        assert a.headers["content-type"] == c.headers["content-type"]
        assert a.headers["x-export-id"] != c.headers["x-export-id"]
    assert len(api.post(f"{ORCH}/tracking/export", json={
        "format": "json", "filters": {"execution_id": seed_eid}}).json()) == 2
    bad = {"format": "xml", "filters": {"team": "a"}}  # an unknown filter: a 422
    r = same(api.post(f"{ORCH}/tracking/export", json=bad),
             api.post(f"{V1}/tracking/export", json=bad))
    assert r[0] == 422 and {"format", "filters.team"} <= {
        d["field"] for d in r[1]["error"]["details"]}

    def tail(path: str) -> list[dict[str, Any]]:
        frames = []
        with connect(f"{product.ws_url}{path}", open_timeout=10) as ws:
            for raw in ws:  # the server closes (1000) after execution_completed
                frame = json.loads(raw)
                if frame["event_type"] != "heartbeat":
                    frames.append(frame)
        return frames

    live = tail(f"{ORCH}/v1/monitor/{seed_eid}")
    assert live == tail(f"/ws/v1/executions/{seed_eid}")
    assert live[0]["event_type"] == "execution_started"
    assert live[-1]["event_type"] == "execution_completed"
    assert tail(f"{ORCH}/v1/monitor/{seed_eid}?after_seq=2") == live[2:]


def test_seed_001_control_and_status_words_follow_the_canonical_routes(api: httpx.Client):
    ours, theirs = new_eid("canon"), new_eid("seed001")
    for eid in (ours, theirs):
        r = api.post(f"{V1}/executions", json={"execution_id": eid, "plan": ASK})
        assert r.status_code == 202, r.text
        wait_for(lambda eid=eid: detail(api, eid).get("current_steps") == ["ask"])
    running = detail(api, theirs)
    assert seed_status(api, theirs) == {
        "execution_id": theirs, "status": "running", "current_node": "ask",
        "progress": running["progress"], "message": running["message"] or None}

    for action, status in (("pause", 200), ("pause", 409), ("resume", 200), ("resume", 409),
                           ("stop", 200), ("stop", 409), ("pause", 409)):  # fmt: skip
        canonical = api.post(f"{V1}/executions/{ours}/{action}")
        alias = api.post(f"{V1}/execute/{theirs}/{action}")
        got = same(alias, canonical, ours, theirs)
        assert got[0] == status, (action, got)
        if status == 200:  # the worker's verdict, as the status route then tells it
            word = {"pause": "paused", "resume": "running", "stop": "stopped"}[action]
            assert got[1]["data"]["status"] == word
            reaches(api, theirs, word)
            assert seed_status(api, theirs)["status"] == word
    assert detail(api, theirs)["stopped_at_steps"] == ["ask"]
    assert seed_status(api, theirs)["current_node"] is None

    # Unknown executions and bad ids answer as canonically (404, 422 naming the field).
    for path in ("/execute/nope_{}/status", "/execute/nope_{}/pause", "/execute/nope_{}/stop",
                 "/execute/nope_{}/logs", "/execute/bad id!/status"):  # fmt: skip
        seed = path.format(new_eid("x"))
        method = "GET" if seed.endswith(("status", "logs")) else "POST"
        canonical = seed.replace("/execute/", "/executions/").removesuffix("/status")
        r = same(api.request(method, V1 + seed), api.request(method, V1 + canonical))
        assert r[0] in (404, 422) and r[1]["success"] is False, r
    r = api.get(f"{V1}/execute/bad id!/status")
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "execution_id"


def test_seed_001_status_and_logs_of_a_reported_execution(api: httpx.Client):
    eid = new_eid("seedlogs")
    plan = {"id": "p_logs", "steps": [{"id": "s1", "system": "ERP"},
                                      {"id": "s2", "system": "FIN", "dependsOn": ["s1"]}]}
    r = api.post(f"{ORCH}/execute", json={"mode": "tracked", "execution_id": eid, "plan": plan})
    assert r.status_code == 202, r.text

    def report(*events: dict[str, Any]) -> None:
        batch = [{"execution_id": eid, "timestamp": f"2025-09-01T10:00:0{i}Z",
                  "event_id": f"{eid}-{e['event_type']}-{i}", **e}
                 for i, e in enumerate(events)]  # fmt: skip
        assert api.post(f"{V1}/events", json={"events": batch}).status_code == 202

    report({"event_type": "step_started", "step_id": "s1"},
           {"event_type": "log", "step_id": "s1", "message": "calling", "data": {"level": "info"}},
           {"event_type": "log", "step_id": "s1", "message": "slow", "data": {"level": "warn"}},
           {"event_type": "log", "step_id": "s1", "message": "late", "data": {"level": "warn"}},
           {"event_type": "log", "step_id": "s1", "message": "boom", "data": {"level": "error"}})
    wait_for(lambda: steps_of(detail(api, eid)).get("s1", {}).get("status") == "running")
    assert seed_status(api, eid)["status"] == "running"
    assert seed_status(api, eid)["current_node"] == "s1"
    report({"event_type": "step_failed", "step_id": "s1",
            "data": {"error": "ledger closed", "error_type": "Conflict"}})
    failed = reaches(api, eid, "failed")
    assert seed_status(api, eid) == {"execution_id": eid, "status": "failed",
                                     "current_node": None, "progress": failed["progress"],
                                     "message": failed["message"] or None}  # fmt: skip

    def logs(path: str, **params: Any) -> httpx.Response:
        return api.get(f"{V1}/{path}/{eid}/logs", params=params)

    everything = logs("execute").json()["data"]["items"]
    assert [(line["level"], line["message"]) for line in everything if line["kind"] == "log"] == [
        ("info", "calling"), ("warning", "slow"), ("warning", "late"), ("error", "boom")]
    for seed_level, level in ((None, None), ("info", "info"), ("warning", "warn"),
                              ("warn", "warn"), ("error", "error")):  # fmt: skip
        for limit in (100, 1):
            mine = {"level": seed_level, "limit": limit} if seed_level else {"limit": limit}
            theirs = {"level": level, "limit": limit} if level else {"limit": limit}
            alias, canonical = logs("execute", **mine), logs("executions", **theirs)
            assert alias.status_code == canonical.status_code == 200
            want = canonical.json()
            for line in want["data"]["items"]:
                line["level"] = "warning" if line["level"] == "warn" else line["level"]
            assert alias.json() == want and want["data"]["items"], (seed_level, limit)
            if seed_level:  # 001's words: `warning`, whichever spelling was asked for
                word = "warning" if seed_level == "warn" else seed_level
                assert {line["level"] for line in alias.json()["data"]["items"]} == {word}
    for bad, field in (({"level": "debug"}, "level"), ({"limit": 0}, "limit"),
                       ({"limit": 5000}, "limit")):  # fmt: skip
        r = same(logs("execute", **bad), logs("executions", **bad))
        assert r[0] == 422 and r[1]["error"]["details"][0]["field"] == field, r


# Seed 001's `definition`: a graph editor's nodes (`type`, `data`, `position`) and edges.
GRAPH = {"nodes": [
    {"id": "shape", "type": "transform", "position": {"x": 0, "y": 0},
     "data": {"mapping": {"echo": "{{ input.message }}"}}},
    {"id": "done", "type": "TRANSFORM", "data": {"mapping": {"ok": "yes"}}}],
    "edges": [{"id": "e1", "source": "shape", "target": "done", "animated": True}]}


def test_plan_generate_through_seed_000s_path_answers_like_the_canonical_route(
    api: httpx.Client,
):
    for body in ({"definition": GRAPH}, {"definition": {"nodes": [{"id": 1, "type": "llm"}]}},
                 {"workflow_id": new_eid("wf_none")}, {}):  # fmt: skip
        r = same(api.post(f"{ORCH}/plan/generate", json=body),
                 api.post(f"{V1}/plans/generate", json=body))
        assert r[0] == (200 if body.get("definition") is GRAPH else
                        404 if "workflow_id" in body else 422), r  # fmt: skip
    plan = api.post(f"{ORCH}/plan/generate", json={"definition": GRAPH}).json()["data"]["plan"]
    assert [(s["id"], s["dependsOn"]) for s in plan["steps"]] == [("shape", []),
                                                                  ("done", ["shape"])]


def test_seed_001_execute_runs_a_definition_or_a_saved_workflow(api: httpx.Client):
    eid, wid = new_eid("seed001run"), new_eid("wf_001")
    r = api.post(f"{V1}/execute", json={"execution_id": eid, "workflow_id": wid,
                                        "definition": GRAPH, "input_data": {"message": "Hello"}})
    assert r.status_code == 202, r.text
    assert r.json()["data"] == {"execution_id": eid, "command_id": r.json()["data"]["command_id"],
                                "status": "pending", "workflow_id": wid, "version": None}
    done = finished(api, eid)
    assert (done["status"], done["workflow_id"]) == ("succeeded", wid)
    assert steps_of(done)["shape"]["output"] == {"echo": "Hello"}
    assert seed_status(api, eid)["status"] == "completed"

    # Seed 001's own node types have no executor here: a 422 naming each node.
    refused = api.post(f"{V1}/execute", json={"definition": {
        "nodes": [{"id": "in", "type": "input"}, {"id": "think", "type": "llm"},
                  {"id": "out", "type": "output"}],
        "edges": [{"source": "in", "target": "think"}, {"source": "think", "target": "out"}]}})
    assert refused.status_code == 422, refused.text
    named = {(d["node_id"], d["problem"].split(" (")[0])
             for d in refused.json()["error"]["details"]}  # fmt: skip
    assert named == {("in", "unknown step type 'input'"), ("think", "unknown step type 'llm'"),
                     ("out", "unknown step type 'output'")}

    # Without a definition it runs the saved workflow, as POST /workflows/{id}/execute does.
    saved = api.post(f"{V1}/workflows", json={"id": wid, "name": "seed 001", **GRAPH})
    assert saved.status_code == 201, saved.text
    ours, theirs = new_eid("canon"), new_eid("seed001wf")
    body = {"input_data": {"message": "again"}}
    canonical = api.post(f"{V1}/workflows/{wid}/execute", json={**body, "execution_id": ours})
    alias = api.post(f"{V1}/execute", json={**body, "execution_id": theirs, "workflow_id": wid})
    got = same(alias, canonical, ours, theirs)
    assert got[0] == 202 and got[1]["data"]["version"] == 1
    for eid in (ours, theirs):
        assert steps_of(finished(api, eid))["shape"]["output"] == {"echo": "again"}
    for bad, status in (({}, 422), ({"workflow_id": new_eid("wf_none")}, 404),
                        ({"workflow_id": wid, "input_data": "x"}, 422)):  # fmt: skip
        r = api.post(f"{V1}/execute", json=bad)
        assert r.status_code == status and r.json()["success"] is False, r.text
