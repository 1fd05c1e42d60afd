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
    over = api.get("/api/v1/stats/executions", params={"workflow_id": wf, "interval": "hour"})
    assert over.status_code == 200  # any selection, in the workflow figures' shape
    moving = ("workflow_id", "from", "to")  # the default window ends now, at each call
    assert {k: v for k, v in over.json()["data"].items() if k not in moving} == {
        k: v for k, v in wf_stats["data"].items() if k not in moving}
    (bucket,) = wf_stats["data"]["series"]
    assert (bucket["runs"], bucket["succeeded"], bucket["failed"], bucket["stopped"]) == \
        (1, 1, 0, 0)  # fmt: skip
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


def test_labels_select_executions_records_and_exports(api: httpx.Client):
    run = uuid.uuid4().hex[:8]
    eids = {"eu": f"exec_eu_{run}", "us": f"exec_us_{run}"}
    batch = [{"event_id": f"{eid}-{n}", "execution_id": eid, "event_type": kind,
              "step_id": "a" if kind.startswith("step") else None, "workflow_id": f"wf_{run}",
              "timestamp": f"2025-09-01T10:00:0{n}Z", "labels": {"region": region, "run": run},
              "data": {"status": "succeeded"} if kind == "execution_completed" else {}}
             for region, eid in eids.items()
             for n, kind in enumerate(("step_started", "step_succeeded", "execution_completed"))]
    assert api.post("/api/v1/events", json={"events": batch}).status_code == 202

    def search(*labels: str) -> list[str]:
        r = api.get("/api/v1/executions", params={"label": list(labels)})
        assert r.status_code == 200, r.text
        return sorted(i["execution_id"] for i in r.json()["data"]["items"])

    assert wait_for(lambda: search(f"run:{run}") == sorted(eids.values()))
    assert search(f"run:{run}", "region:eu") == [eids["eu"]]  # every label given must match
    (row,) = api.get("/api/v1/executions", params={"label": "region:eu", "workflow_id":
                                                   f"wf_{run}"}).json()["data"]["items"]
    assert row["labels"] == {"region": "eu", "run": run}
    assert search(f"run:{run}", "region:mars") == []
    records = api.get("/api/v1/tracking/records", params={"label": [f"run:{run}", "region:us"]})
    assert {r["execution_id"] for r in records.json()["data"]["items"]} == {eids["us"]}
    export = api.post("/api/v1/tracking/export", json={
        "format": "csv", "filters": {"labels": {"run": run, "region": "eu"}}})  # fmt: skip
    assert export.status_code == 200
    lines = export.text.strip().splitlines()
    assert len(lines) == 2 and eids["eu"] in lines[1]  # the header and eu's one attempt
    assert f"region-eu_run-{run}" in export.headers["content-disposition"]
    bad = api.get("/api/v1/executions", params={"label": "no-colon"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "label"
