"""Exports and the projection rebuild over HTTP, against the running product."""

from __future__ import annotations

import subprocess
import sys

import httpx

from tests.e2e.conftest import Product, wait_for

BACKWARDS = {"from": "2025-09-02T00:00:00Z", "to": "2025-09-01T00:00:00Z"}


def test_export_validation_headers_and_registry(api: httpx.Client):
    for body, field in (({"format": "xml"}, "format"), ({"format": "csv", "kind": "logs"}, "kind"),
                        ({"format": "csv", "filters": {"status": "done"}}, "filters.status"),
                        ({"format": "csv", "filters": {"colour": "red"}}, "filters.colour"),
                        ({"format": "csv", "filters": BACKWARDS}, "filters")):  # fmt: skip
        r = api.post("/api/v1/tracking/export", json=body)
        assert r.status_code == 422, body
        assert field in [d["field"] for d in r.json()["error"]["details"]], r.json()

    r = api.post("/api/v1/tracking/export", json={
        "format": "json", "kind": "events", "filters": {"workflow_id": "no such/wf"},
        "mask": ["pin"]})  # fmt: skip
    assert r.status_code == 200 and r.json() == []
    assert r.headers["content-type"].startswith("application/json")
    disposition = r.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="runledger-events-workflow_id-no_such_wf-')
    assert disposition.endswith('Z.json"')
    status = api.get(f"/api/v1/exports/{r.headers['x-export-id']}").json()["data"]
    assert (status["rows"], status["finished"], status["kind"], status["format"]) == (
        0, True, "events", "json")  # fmt: skip
    assert api.get("/api/v1/exports/exp_nope").status_code == 404


def test_rebuild_through_the_api_and_the_cli(api: httpx.Client, product: Product):
    r = api.post("/api/v1/admin/projections/rebuild")
    assert r.status_code in (202, 409)

    def finished():
        run = api.get("/api/v1/admin/projections/rebuild").json()["data"]
        return run if run["state"] != "running" else None

    assert wait_for(finished)["state"] == "finished"
    cli = subprocess.run([sys.executable, "-m", "runledger.cli", "projections", "rebuild",
                          "--url", product.base_url], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert "rebuilt executions, step_records" in cli.stdout
