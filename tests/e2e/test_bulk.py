"""Bulk control against the real product: a filter selects executions, each gets an
ordinary command through Kafka, and the operation reports done, failed (with the status
and reason a single command would get) and progress."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from tests.e2e.conftest import wait_for
from tests.e2e.plans import new_eid


def report(api: httpx.Client, events: list[dict[str, Any]]) -> None:
    r = api.post("/api/v1/events", json={"events": events})
    assert r.status_code == 202, r.text


def count(api: httpx.Client, **params: str) -> int:
    items = api.get("/api/v1/executions", params={"limit": 1000, **params}).json()["data"]
    return len(items["items"])


def test_a_bulk_stop_over_200_executions_reports_each_one(api: httpx.Client):
    wid, now = new_eid("wf_bulk"), datetime.now(UTC).isoformat()
    running = [f"{wid}_r{i}" for i in range(200)]
    ended = [f"{wid}_e{i}" for i in range(3)]
    report(api, [{"execution_id": eid, "event_type": "step_started", "step_id": "s",
                  "timestamp": now, "workflow_id": wid} for eid in running + ended])
    report(api, [{"execution_id": eid, "event_type": "execution_completed", "timestamp": now,
                  "workflow_id": wid, "data": {"status": "succeeded"}} for eid in ended])
    wait_for(lambda: count(api, workflow_id=wid, status="running") == 200
             and count(api, workflow_id=wid, status="succeeded") == 3, timeout=60)

    dry = api.post("/api/v1/executions/bulk", json={
        "action": "stop", "filter": {"workflow_id": wid, "status": "running"}, "dry_run": True})
    assert dry.status_code == 200 and dry.json()["data"]["total"] == 200
    assert count(api, workflow_id=wid, status="running") == 200  # a dry run changes nothing

    started = api.post("/api/v1/executions/bulk", json={
        "action": "stop", "filter": {"workflow_id": wid}, "reason": "maintenance"})
    assert started.status_code == 202, started.text
    bulk_id = started.json()["data"]["bulk_id"]
    assert started.json()["data"]["total"] == 203

    def progress() -> dict[str, Any]:
        r = api.get(f"/api/v1/bulk/{bulk_id}")
        assert r.status_code == 200, r.text
        return r.json()["data"]

    first = progress()
    assert first["total"] == 203 and first["done"] + first["failed"] + first["pending"] == 203
    final = wait_for(lambda: (p := progress())["status"] == "finished" and p, timeout=90)
    assert (final["done"], final["failed"], final["pending"], final["progress"]) == (
        200, 3, 0, 1.0)
    assert {f["execution_id"] for f in final["failures"]} == set(ended)
    assert {f["status"] for f in final["failures"]} == {409}
    assert all(f["reason"] for f in final["failures"])
    wait_for(lambda: count(api, workflow_id=wid, status="stopped") == 200, timeout=60)


def test_bulk_requests_that_cannot_run_are_refused_clearly(api: httpx.Client):
    bad = api.post("/api/v1/executions/bulk", json={"action": "explode"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "action"
    window = api.post("/api/v1/executions/bulk", json={"action": "pause", "filter": {
        "from": "2025-02-01T00:00:00Z", "to": "2025-01-01T00:00:00Z"}})
    assert window.status_code == 422
    assert api.get("/api/v1/bulk/bulk_nope").status_code == 404
    empty = api.post("/api/v1/executions/bulk", json={
        "action": "retry", "filter": {"workflow_id": new_eid("wf_none")}})
    assert empty.status_code == 202 and empty.json()["data"]["total"] == 0
    done = api.get(f"/api/v1/bulk/{empty.json()['data']['bulk_id']}").json()["data"]
    assert (done["status"], done["progress"]) == ("finished", 1.0)
