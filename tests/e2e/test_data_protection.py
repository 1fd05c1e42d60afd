"""Purge and retention against the real product: a purge (a dry run first) removes a
finished execution from every read and the audit log but its own entry, and leaves
unfinished ones; a tenant's retention deletes that tenant's old data only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.e2e.conftest import wait_for
from tests.e2e.plans import new_eid

V1 = "/api/v1"


def report(api: httpx.Client, eid: str, wf: str, when: datetime, done: bool,
           tenant: str = "default") -> None:  # fmt: skip
    at = when.isoformat().replace("+00:00", "Z")
    events = [{"event_id": f"{eid}-s", "execution_id": eid, "event_type": "step_started",
               "step_id": "a", "timestamp": at, "workflow_id": wf, "system": "ERP",
               "tenant": tenant, "data": {"password": "hunter2"}}]  # fmt: skip
    if done:
        events.append({"event_id": f"{eid}-c", "execution_id": eid, "tenant": tenant,
                       "event_type": "execution_completed", "timestamp": at,
                       "workflow_id": wf})  # fmt: skip
    assert api.post(f"{V1}/events", json={"events": events}).status_code == 202


def test_a_purge_removes_a_finished_execution_everywhere_after_a_dry_run(api: httpx.Client):
    wf, now = new_eid("wf_purge"), datetime.now(UTC)
    gone, running = new_eid("purged"), new_eid("kept")
    report(api, gone, wf, now, done=True)
    report(api, running, wf, now, done=False)
    wait_for(lambda: api.get(f"{V1}/executions/{gone}").json()["data"].get("status")
             == "succeeded", timeout=30)  # fmt: skip
    wait_for(lambda: api.get(f"{V1}/executions/{running}").json()["data"].get("projected"),
             timeout=30)  # fmt: skip
    body = {"filter": {"workflow_id": wf}}
    dry = api.post(f"{V1}/purge", json=body).json()["data"]
    assert dry == {"dry_run": True, "executions": 1, "execution_ids": [gone],
                   "unfinished": [running]}
    assert api.get(f"{V1}/executions/{gone}").status_code == 200  # a dry run deletes nothing
    assert api.post(f"{V1}/purge", json={"filter": {}}).status_code == 422
    done = api.post(f"{V1}/purge", json={**body, "dry_run": False, "reason": "GDPR request"})
    assert done.status_code == 200 and done.json()["data"]["purged"] == 1, done.text
    assert api.get(f"{V1}/executions/{gone}").status_code == 404
    assert api.get(f"{V1}/tracking/records", params={"execution_id": gone}).json()[
        "data"]["items"] == []
    assert api.get(f"{V1}/audit", params={"execution_id": gone}).json()["data"]["items"] == []
    purges = api.get(f"{V1}/audit", params={"action": "purge"}).json()["data"]["items"]
    assert any(p["execution_id"] == done.json()["data"]["purge_id"] for p in purges)
    assert api.get(f"{V1}/executions/{running}").status_code == 200


def test_a_tenants_retention_deletes_its_old_data_only(api: httpx.Client):
    tenant, wf, now = "ret_t", new_eid("wf_ret"), datetime.now(UTC)
    old, fresh, other = new_eid("old"), new_eid("fresh"), new_eid("other")
    report(api, old, wf, now - timedelta(days=3), done=True, tenant=tenant)
    report(api, fresh, wf, now, done=True, tenant=tenant)
    report(api, other, wf, now - timedelta(days=3), done=True)  # the default tenant
    for eid, t in ((old, tenant), (fresh, tenant), (other, "default")):
        wait_for(lambda eid=eid, t=t: api.get(f"{V1}/executions/{eid}", params={
            "tenant": t}).json()["data"].get("status") == "succeeded", timeout=30)
    policy = {"tenants": {tenant: {"events_days": 1, "records_days": 1, "journal_days": 30}}}
    set_ = api.put(f"{V1}/admin/retention", json=policy)
    assert set_.status_code == 200 and "ret_t" in set_.json()["data"]["ttl"]["events"]
    assert api.get(f"{V1}/admin/retention").json()["data"]["tenants"][tenant][
        "events_days"] == 1
    assert api.post(f"{V1}/admin/retention/enforce").status_code == 200
    # (this process accepted it a moment ago, so it may still read as pending, unprojected)
    assert not api.get(f"{V1}/executions/{old}", params={"tenant": tenant}).json()[
        "data"].get("projected")
    listed = api.get(f"{V1}/executions", params={"tenant": tenant, "workflow_id": wf,
                                                 "from": "2000-01-01T00:00:00Z"}).json()
    assert [i["execution_id"] for i in listed["data"]["items"]] == [fresh]
    assert api.get(f"{V1}/tracking/records", params={
        "tenant": tenant, "execution_id": old}).json()["data"]["items"] == []
    assert api.get(f"{V1}/executions/{fresh}", params={"tenant": tenant}).status_code == 200
    assert api.get(f"{V1}/executions/{other}").status_code == 200
    bad = api.put(f"{V1}/admin/retention", json={"tenants": {"x'; DROP": {"events_days": 1}}})
    assert bad.status_code == 422
    assert api.put(f"{V1}/admin/retention", json={}).json()["data"]["ttl"]["events"] is None
