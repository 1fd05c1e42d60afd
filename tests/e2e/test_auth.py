"""API keys against the real product: 401 without a key, roles (viewer < operator <
admin), each key inside its own tenant (another tenant's data is not found, naming one
is a 403), the journal naming the key that acted, and the WebSocket's ?token=."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from api.auth import digest
from tests.e2e.conftest import Product, launch, wait_for
from tests.e2e.plans import new_eid

V1 = "/api/v1"
KEYS = {
    "acme-view-key": {"tenant": "acme", "role": "viewer", "name": "acme-viewer"},
    "acme-op-key": {"tenant": "acme", "role": "operator", "name": "acme-operator"},
    f"sha256:{digest('acme-admin-key')}": {"tenant": "acme", "role": "admin",
                                            "name": "acme-admin"},
    "beta-op-key": {"tenant": "beta", "role": "operator", "name": "beta-operator"},
}
PLAN = {"id": "p_auth", "steps": [{"id": "t", "type": "transform",
                                   "config": {"mapping": {"ok": "yes"}}}]}


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    p = launch(Path(tmp_path_factory.mktemp("keyed")), RUNLEDGER_API_KEYS=json.dumps(KEYS))
    try:
        p.wait_ready()
        yield p
    finally:
        p.stop()


def client(p: Product, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=p.base_url, timeout=30, headers=headers)


def test_keys_roles_and_tenants(keyed: Product):
    anon, view = client(keyed, None), client(keyed, "acme-view-key")
    op = client(keyed, "acme-op-key")
    admin, beta = client(keyed, "acme-admin-key"), client(keyed, "beta-op-key")
    ready = anon.get("/ready")
    assert ready.status_code == 200 and ready.json()["auth"] == "api_keys"
    assert anon.get("/health").status_code == 200
    # The page holds no data: it loads without a key and asks for one on the first 401.
    for path in ("/", "/ui", "/ui/app/main.js", "/ui/vendor/preact/dist/preact.mjs"):
        assert anon.get(path).status_code == 200, path
    escaped = anon.get("/ui/app/%2e%2e/%2e%2e/api/app.py")  # the page's files only
    assert escaped.status_code in (401, 404) and "import" not in escaped.text
    for c in (anon, client(keyed, "not-a-key")):
        r = c.get(f"{V1}/executions")
        assert r.status_code == 401 and r.json()["error"]["category"] == "permission"
    assert "acme-admin-key" not in keyed.log_path.read_text()  # only its hash was given

    refused = view.post(f"{V1}/executions", json={"plan": PLAN})
    assert refused.status_code == 403 and "operator" in refused.json()["error"]["message"]
    assert view.post(f"{V1}/plans/validate", json={"plan": PLAN}).status_code == 200

    eid = new_eid("auth")
    assert op.post(f"{V1}/executions", json={"execution_id": eid, "plan": PLAN}).status_code \
        == 202  # no tenant given: the key's
    done = wait_for(lambda: (d := view.get(f"{V1}/executions/{eid}").json()["data"])
                    and d.get("status") == "succeeded" and d, timeout=60)  # fmt: skip
    assert done["execution_id"] == eid
    assert beta.get(f"{V1}/executions/{eid}").status_code == 404  # another tenant's
    for r in (beta.get(f"{V1}/executions/{eid}", params={"tenant": "acme"}),
              beta.post(f"{V1}/executions", json={"plan": PLAN, "tenant": "acme"}),
              beta.post(f"{V1}/events", json={"events": [{
                  "execution_id": eid, "event_type": "log", "tenant": "acme",
                  "timestamp": "2025-09-01T10:00:00Z"}]})):  # fmt: skip
        assert r.status_code == 403 and r.json()["error"]["code"] == "other_tenant", r.text
    assert beta.post(f"{V1}/executions/{eid}/stop").status_code == 404
    listed = [i["execution_id"] for i in view.get(f"{V1}/executions").json()["data"]["items"]]
    assert eid in listed
    assert eid not in [i["execution_id"] for i in beta.get(f"{V1}/executions").json()[
        "data"]["items"]]

    # Reports land in the key's tenant too.
    rid = new_eid("authrep")
    assert op.post(f"{V1}/events", json={"events": [{
        "execution_id": rid, "event_type": "step_started", "step_id": "a",
        "timestamp": "2025-09-01T10:00:00Z"}]}).status_code == 202  # fmt: skip
    wait_for(lambda: view.get(f"{V1}/executions/{rid}").status_code == 200, timeout=30)

    # Exports too: the key's tenant is the filter's, another one is refused.
    export = {"format": "ndjson", "kind": "executions", "filters": {"execution_id": eid}}
    assert beta.post(f"{V1}/tracking/export", json={
        **export, "filters": {"execution_id": eid, "tenant": "acme"}}).status_code == 403
    assert beta.post(f"{V1}/tracking/export", json=export).text.strip() == ""
    rows = [json.loads(line) for line in view.post(f"{V1}/tracking/export", json=export)
            .text.splitlines()]  # fmt: skip
    assert [r["execution_id"] for r in rows] == [eid]

    # Admin only: limits, workflows, metrics.
    for c, status in ((op, 403), (admin, 200)):
        assert c.put(f"{V1}/admin/limits", json={"max_queued": 9_999}).status_code == status
        assert c.get("/metrics").status_code == status
    assert op.post(f"{V1}/workflows", json={"name": "w"}).status_code == 403
    made = admin.post(f"{V1}/workflows", json={"name": "w", "steps": PLAN["steps"]})
    assert made.status_code == 201
    wid = made.json()["data"]["id"]
    assert op.post(f"{V1}/workflows/{wid}/execute").status_code == 202  # running is operating
    assert view.get(f"{V1}/workflows/{wid}").status_code == 200
    assert beta.get(f"{V1}/workflows/{wid}").status_code == 404

    # The journal names the key that acted.
    audit = admin.get(f"{V1}/audit", params={"execution_id": eid}).json()["data"]["items"]
    assert {a["actor"] for a in audit} == {"acme-operator"}
    assert admin.get(f"{V1}/audit").json()["data"]["items"]  # tenant acme only
    assert all(a["tenant"] == "acme" for a in admin.get(f"{V1}/audit").json()["data"]["items"])

    ws = keyed.ws_url + f"/ws/v1/executions/{eid}"
    with pytest.raises(InvalidStatus) as refused_ws:  # the handshake is refused
        connect(ws, open_timeout=10)
    assert refused_ws.value.response.status_code == 403
    with connect(ws + "?token=beta-op-key", open_timeout=10) as sock:
        frame = json.loads(sock.recv(timeout=10))
        assert (frame.get("type"), frame.get("category")) == ("error", "not_found")
    with connect(ws + "?token=acme-view-key", open_timeout=10) as sock:
        first = json.loads(sock.recv(timeout=10))
        assert (first["event_type"], first["tenant"]) == ("execution_started", "acme")
