"""A user drives the running product over HTTP and WebSocket (tracked mode)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import websockets

from tests.e2e.conftest import Product, wait_for

PLAN = {"id": "plan_recon", "name": "跨系统对账", "steps": [
    {"id": "s1", "system": "ERP", "module": "Orders"},
    {"id": "s2", "system": "ERP", "module": "Invoices", "dependsOn": ["s1"]},
    {"id": "s3", "system": "WMS", "module": "Stock", "dependsOn": ["s1"]},
    {"id": "s4", "system": "WMS", "module": "Picking", "dependsOn": ["s2", "s3"]},
    {"id": "s5", "system": "FIN", "module": "Ledger", "dependsOn": ["s4"]},
    {"id": "s6", "system": "FIN", "module": "Close", "dependsOn": ["s5"]},
]}  # fmt: skip
BASE = datetime.now(UTC) - timedelta(minutes=5)


def ts(ms: int) -> str:
    return (BASE + timedelta(milliseconds=ms)).isoformat().replace("+00:00", "Z")


def step_reports(eid: str, step: str, system: str, start: int, end: int, ok: bool = True):
    started = {"event_id": f"{eid}-{step}-s", "execution_id": eid, "event_type": "step_started",
               "step_id": step, "system": system, "timestamp": ts(start)}
    done = {"event_id": f"{eid}-{step}-e", "execution_id": eid, "step_id": step,
            "system": system, "timestamp": ts(end),
            "event_type": "step_succeeded" if ok else "step_failed",
            "data": {} if ok else {"error": "ledger closed", "error_type": "Conflict"}}
    return [started, done]


def detail(api: httpx.Client, eid: str) -> dict:
    r = api.get(f"/api/v1/executions/{eid}")
    assert r.status_code == 200, r.text
    return r.json()["data"]


def new_eid() -> str:
    return f"exec_{uuid.uuid4().hex[:12]}"


def test_six_step_three_system_execution_with_a_failing_step_ends_failed(api: httpx.Client):
    eid = new_eid()
    r = api.post("/api/v1/executions", json={"mode": "tracked", "execution_id": eid,
                                             "plan": PLAN, "environment": "test"})
    assert r.status_code == 202 and r.json()["data"]["execution_id"] == eid
    reports = (step_reports(eid, "s1", "ERP", 0, 100) + step_reports(eid, "s2", "ERP", 100, 250)
               + step_reports(eid, "s3", "WMS", 100, 400) + step_reports(eid, "s4", "WMS", 400, 700)
               + step_reports(eid, "s5", "FIN", 700, 1_000, ok=False))
    r = api.post("/api/v1/events", json={"events": reports})
    assert r.status_code == 202, r.text
    # The same batch again changes nothing.
    assert api.post("/api/v1/events", json={"events": reports}).status_code == 202

    final = wait_for(lambda: (d := detail(api, eid))["status"] == "failed" and d)
    assert final["blocked_steps"] == ["s6"]
    assert final["progress"] == 1.0
    assert [s["status"] for s in final["steps"]] == [
        "succeeded", "succeeded", "succeeded", "succeeded", "failed", "blocked"]
    assert final["steps"][4]["error_type"] == "Conflict"
    assert final["duration_ms"] == 1_000

    events = api.get(f"/api/v1/executions/{eid}/events").json()["data"]["items"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    # start + 10 step reports + completion; the resend added nothing. Starts and reports
    # travel on different topics: when the reports won, the start attaches the plan
    # afterwards as `execution_updated`.
    types = [e["event_type"] for e in events]
    assert types.count("execution_started") == 1 and types.count("execution_completed") == 1
    assert len([t for t in types if t.startswith("step_")]) == 10
    assert len(events) == 12 + types.count("execution_updated")
    assert types[-1] == "execution_completed"
    assert len({e["event_id"] for e in events}) == len(events)

    summary = api.get("/api/v1/tracking/summary", params={"execution_id": eid}).json()["data"]
    assert summary["systems"] == 3 and summary["modules"] == 5
    assert summary["failed_steps"] == 1 and summary["plans"] == 1
    assert summary["cross_system_ratio"] == 1.0 and summary["avg_duration_ms"] == 1_000
    records = api.get("/api/v1/tracking/records", params={"execution_id": eid}).json()["data"]
    by_step = {rec["step_id"]: rec for rec in records["items"]}
    assert sorted(by_step) == ["s1", "s2", "s3", "s4", "s5"]  # s6 never ran: no record
    assert by_step["s3"]["duration_ms"] == 300 and by_step["s5"]["status"] == "failed"


def test_websocket_reconnect_after_seq_sees_the_rest_exactly_once(
    api: httpx.Client, product: Product
):
    eid = new_eid()
    api.post("/api/v1/executions", json={"mode": "tracked", "execution_id": eid, "plan": {
        "id": "p_ws", "steps": [{"id": f"w{i}", "system": "ERP"} for i in range(4)]}})
    wait_for(lambda: detail(api, eid)["status"] == "running")

    def report(i: int) -> None:
        evs = step_reports(eid, f"w{i}", "ERP", i * 100, i * 100 + 50)
        assert api.post("/api/v1/events", json={"events": evs}).status_code == 202

    async def scenario() -> tuple[list[dict], list[dict]]:
        url = f"{product.ws_url}/ws/v1/executions/{eid}"
        first: list[dict] = []
        async with websockets.connect(url) as ws:
            report(0)
            report(1)
            while len(first) < 4:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
                if frame["event_type"] != "heartbeat":
                    first.append(frame)
        report(2)
        report(3)
        rest: list[dict] = []
        async with websockets.connect(f"{url}?after_seq=4") as ws:
            async for raw in ws:  # the server closes (1000) after execution_completed
                frame = json.loads(raw)
                if frame["event_type"] != "heartbeat":
                    rest.append(frame)
            assert ws.close_code == 1000
        return first, rest

    first, rest = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert [e["seq"] for e in first] == [1, 2, 3, 4]
    all_events = api.get(f"/api/v1/executions/{eid}/events").json()["data"]["items"]
    assert [e["seq"] for e in rest] == [e["seq"] for e in all_events[4:]]
    assert rest[-1]["event_type"] == "execution_completed"
    assert [e["event_id"] for e in first + rest] == [e["event_id"] for e in all_events]


def test_finish_by_hand_then_a_second_finish_is_a_conflict(api: httpx.Client):
    eid = new_eid()
    api.post("/api/v1/events", json={"events": [
        {"execution_id": eid, "event_type": "step_started", "step_id": "x", "timestamp": ts(0)}]})
    wait_for(lambda: detail(api, eid)["status"] == "running")
    r = api.post(f"/api/v1/executions/{eid}/finish", json={"status": "stopped"})
    assert r.status_code == 200 and r.json()["data"]["status"] == "stopped", r.text
    r = api.post(f"/api/v1/executions/{eid}/finish", json={"status": "succeeded"})
    assert r.status_code == 409
    assert r.json()["error"]["category"] == "conflict"
    assert r.json()["error"]["code"] == "already_finished"


def test_bad_input_gets_clear_errors_and_nothing_of_a_bad_batch_is_kept(api: httpx.Client):
    eid = new_eid()
    good = {"execution_id": eid, "event_type": "step_started", "step_id": "a", "timestamp": ts(0)}
    bad = {"execution_id": eid, "event_type": "step_exploded", "timestamp": "yesterday"}
    r = api.post("/api/v1/events", json={"events": [good, bad]})
    assert r.status_code == 422
    fields = {d["field"] for d in r.json()["error"]["details"]}
    assert {"events.1.event_type", "events.1.timestamp"} <= fields
    r = api.post("/api/v1/events", content=b"{not json",
                 headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"
    for when in ("0042-06-30T23:13:00Z", "1969-12-31T23:59:59Z", "2300-01-01T00:00:00Z"):
        r = api.post("/api/v1/events", json={"events": [{**good, "timestamp": when}]})
        assert r.status_code == 422, when  # the archive's time columns cannot hold it
        assert r.json()["error"]["details"][0]["field"] == "events.0.timestamp"
    r = api.get(f"/api/v1/executions/{eid}")
    assert r.status_code == 404 and r.json()["error"]["category"] == "not_found"
    r = api.post("/api/v1/executions", json={"mode": "tracked", "plan": {"steps": [
        {"id": "a", "dependsOn": ["b"]}, {"id": "b", "dependsOn": ["a"]}]}})
    assert r.status_code == 422 and "cycle" in r.text
    time.sleep(1.0)
    assert api.get(f"/api/v1/executions/{eid}").status_code == 404


def test_accepted_but_unprojected_reads_pending_never_404(api: httpx.Client):
    eid = new_eid()
    r = api.post("/api/v1/executions", json={"mode": "tracked", "execution_id": eid})
    assert r.status_code == 202
    first = api.get(f"/api/v1/executions/{eid}")
    assert first.status_code == 200
    assert first.json()["data"]["status"] in ("pending", "running")


def test_health_and_ready(api: httpx.Client):
    assert api.get("/health").json() == {"status": "ok"}
    ready = api.get("/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True


def test_a_late_report_after_the_execution_left_the_hot_set_continues_its_seq(
    api: httpx.Client,
):
    eid = new_eid()
    api.post("/api/v1/executions", json={"mode": "tracked", "execution_id": eid})
    wait_for(lambda: detail(api, eid).get("last_seq") == 1)
    assert api.post(f"/api/v1/executions/{eid}/finish", json={"status": "succeeded"}
                    ).status_code == 200
    wait_for(lambda: detail(api, eid)["status"] == "succeeded")
    time.sleep(6)  # RUNLEDGER_FINISHED_TTL is 3 s in this session: the worker evicted it
    late = {"event_id": f"{eid}-late", "execution_id": eid, "event_type": "log",
            "timestamp": ts(5), "message": "late line"}
    assert api.post("/api/v1/events", json={"events": [late]}).status_code == 202
    wait_for(lambda: detail(api, eid).get("last_seq") == 3)
    events = api.get(f"/api/v1/executions/{eid}/events").json()["data"]["items"]
    assert [(e["seq"], e["event_type"]) for e in events] == [
        (1, "execution_started"), (2, "execution_completed"), (3, "log")]
    assert detail(api, eid)["status"] == "succeeded"
    r = api.post(f"/api/v1/executions/{eid}/finish", json={"status": "failed"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_finished"


def test_plan_and_input_validation_routes_name_every_problem(api: httpx.Client):
    ok_plan = {"id": "p", "steps": [{"id": "fetch", "type": "api", "inputsSpec":
               {"date": "date"}, "config": {"url": "http://erp/o?d={{ input.date }}"}}]}
    assert api.post("/api/v1/plans/validate", json={"plan": ok_plan}).json()["data"] == {
        "valid": True}
    bad_plan = {"steps": [{"id": "a", "type": "teleport"},
                          {"id": "b", "dependsOn": ["ghost"]}]}
    r = api.post("/api/v1/plans/validate", json={"plan": bad_plan})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_plan"
    assert {d["step_id"] for d in r.json()["error"]["details"]} == {"a", "b"}
    r = api.post("/api/v1/executions/validate-inputs", json={
        "plan": ok_plan, "inputs": {"date": "soon"}, "environment": "qa", "timeoutSec": 90_000})
    assert r.status_code == 422
    assert {d["field"] for d in r.json()["error"]["details"]} == {
        "inputs.date", "environment", "timeoutSec"}
    r = api.post("/api/v1/executions/validate-inputs", json={
        "plan": ok_plan, "inputs": {"date": "2025-09-01"}, "environment": "test"})
    assert r.status_code == 200 and r.json()["data"] == {"valid": True}
    eid = new_eid()  # an invalid plan starts nothing
    r = api.post("/api/v1/executions",
                 json={"mode": "tracked", "execution_id": eid, "plan": bad_plan})
    assert r.status_code == 422
    assert api.get(f"/api/v1/executions/{eid}").status_code == 404


def test_one_socket_switches_executions_with_subscribe_and_unsubscribe(
    api: httpx.Client, product: Product
):
    a, b = new_eid(), new_eid()
    for eid in (a, b):
        api.post("/api/v1/events", json={"events": step_reports(eid, "x", "ERP", 0, 10)})
        wait_for(lambda eid=eid: detail(api, eid).get("last_seq") == 3)

    async def scenario() -> tuple[list, list, list, dict]:
        async def frames(ws, n: int) -> list[dict]:
            out: list[dict] = []
            while len(out) < n:
                f = json.loads(await asyncio.wait_for(ws.recv(), 20))
                if f.get("event_type") != "heartbeat":
                    out.append(f)
            return out

        async with websockets.connect(f"{product.ws_url}/ws/v1/executions/{a}") as ws:
            first = await frames(ws, 3)
            await ws.send(json.dumps({"type": "subscribe", "execution_id": b, "after_seq": 1}))
            second = await frames(ws, 2)
            await ws.send(json.dumps({"type": "unsubscribe"}))
            beat = json.loads(await asyncio.wait_for(ws.recv(), 20))
            await ws.send("not json")
            error = json.loads(await asyncio.wait_for(ws.recv(), 20))
            while error.get("event_type") == "heartbeat":
                error = json.loads(await asyncio.wait_for(ws.recv(), 20))
            return first, second, [beat], error

    first, second, beats, error = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert [(e["execution_id"], e["seq"]) for e in first] == [(a, 1), (a, 2), (a, 3)]
    assert [(e["execution_id"], e["seq"]) for e in second] == [(b, 2), (b, 3)]
    assert beats[0]["event_type"] == "heartbeat" and beats[0]["execution_id"] is None
    assert error["type"] == "error" and error["category"] == "validation"
