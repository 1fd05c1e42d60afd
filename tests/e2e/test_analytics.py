"""Search, statistics and realtime over HTTP: real rows in, 422s naming the field."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from tests.e2e.conftest import wait_for


def test_search_stats_realtime_and_bad_filters_over_http(api: httpx.Client):
    eid, wf = f"exec_{uuid.uuid4().hex[:12]}", f"wf_{uuid.uuid4().hex[:8]}"
    t0 = datetime.now(UTC) - timedelta(seconds=30)

    def ts(ms: int) -> str:
        return (t0 + timedelta(milliseconds=ms)).isoformat().replace("+00:00", "Z")

    def event(n: int, kind: str, at: int, step: str | None = None, **data) -> dict:
        return {"event_id": f"{eid}-{n}", "execution_id": eid, "event_type": kind,
                "step_id": step, "system": "ERP", "module": "Orders", "workflow_id": wf,
                "timestamp": ts(at), "data": data}  # fmt: skip

    batch = [event(1, "step_started", 0, "a"), event(2, "step_succeeded", 300, "a"),
             event(3, "execution_completed", 400, status="succeeded")]  # fmt: skip
    assert api.post("/api/v1/events", json={"events": batch}).status_code == 202

    def found() -> list:
        r = api.get("/api/v1/executions", params={"workflow_id": wf, "status": "succeeded"})
        assert r.status_code == 200, r.text
        return r.json()["data"]["items"]

    (row,) = wait_for(found)
    assert row["execution_id"] == eid and row["step_counts"]["succeeded"] == 1
    wf_stats = api.get(f"/api/v1/stats/workflows/{wf}", params={"interval": "hour"}).json()
    assert wf_stats["data"]["runs"] == 1 and wf_stats["data"]["success_rate"] == 1.0
    systems = api.get("/api/v1/stats/systems", params={"workflow_id": wf}).json()["data"]
    assert [i["system"] for i in systems["items"]] == ["ERP"]
    summary = api.get("/api/v1/tracking/summary", params={"workflow_id": wf}).json()["data"]
    assert summary["runs"] == 1 and summary["systems"] == 1
    realtime = api.get("/api/v1/stats/realtime").json()["data"]
    assert len(realtime["executions_per_minute"]) == 60
    assert isinstance(realtime["projector_lag"], dict)  # chDB layout: the projector is here

    def field_of(path: str, **params) -> str:
        r = api.get(path, params=params)
        assert r.status_code == 422, r.text
        body = r.json()["error"]
        assert body["category"] == "validation"
        return str(body["details"][0]["field"])

    assert field_of("/api/v1/executions", status="exploded") == "status"
    assert field_of("/api/v1/executions", cursor="not-a-cursor") == "cursor"
    assert field_of("/api/v1/executions", limit="0") == "limit"
    assert field_of("/api/v1/tracking/records", cursor="bm9wZQ") == "cursor"
    assert field_of("/api/v1/stats/systems", **{"from": ts(1000), "to": ts(0)}) == "from"
    assert field_of(f"/api/v1/stats/workflows/{wf}", interval="week") == "interval"
    assert field_of("/api/v1/stats/modules", to="yesterday") == "to"
    empty = api.get("/api/v1/executions", params={"tenant": "nobody"}).json()["data"]
    assert empty == {"items": [], "next_cursor": None}
