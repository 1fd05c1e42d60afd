"""`GET /metrics` shows every process's figures: the API's, the workers' and the
projector's, after some work went through."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import wait_for
from tests.e2e.test_tracked import step_reports

ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"


def _samples(api: httpx.Client) -> dict[str, list]:
    r = api.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out.setdefault(s.name, []).append(s)
    return out


def _total(samples: dict[str, list], name: str, **labels: str) -> float:
    return sum(s.value for s in samples.get(name, [])
               if all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_cover_api_worker_and_projector(api: httpx.Client):
    eid = f"metrics_{uuid.uuid4().hex[:8]}"
    reports = step_reports(eid, "a", "ERP", 0, 100) + step_reports(eid, "b", "WMS", 100, 300,
                                                                    ok=False)  # fmt: skip
    assert api.post("/api/v1/events", json={"events": reports}).status_code == 202
    wait_for(lambda: api.get(f"/api/v1/executions/{eid}").json()["data"].get("last_seq", 0) >= 5)

    def projected() -> dict[str, list] | None:
        s = _samples(api)
        return s if _total(s, "runledger_projector_batch_events_count") > 0 else None

    s = wait_for(projected, timeout=30)
    assert _total(s, "runledger_commands_total") >= 1  # API
    assert _total(s, "runledger_journal_commit_seconds_count") >= 1
    assert _total(s, "runledger_http_request_seconds_count", route="/api/v1/events",
                  method="POST", status="202") >= 1  # fmt: skip
    assert _total(s, "runledger_decide_seconds_count") >= 1  # the worker process
    assert _total(s, "runledger_events_total", event_type="step_started") >= 2
    assert _total(s, "runledger_step_outcomes_total", outcome="failed",
                  error_type="Conflict") >= 1  # fmt: skip
    assert _total(s, "runledger_projector_delay_seconds_count") >= 1  # the projector
    groups = {x.labels["group"] for x in s.get("runledger_consumer_lag", [])}
    assert any("worker" in g for g in groups) and any("projector" in g for g in groups), groups
    assert "runledger_websocket_subscribers" in s


def test_alert_rules_name_metrics_the_product_serves(api: httpx.Client):
    """deploy/prometheus/alerts.yml holds the seed's thresholds, over real metric names."""
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    served = {f.name for f in text_string_to_metric_families(api.get("/metrics").text)}
    for rule in rules:
        names = set(re.findall(r"\brunledger_[a-z_]+", rule["expr"]))
        assert names, rule["alert"]
        for name in names:
            family = re.sub(r"_(bucket|count|sum|total)$", "", name)
            assert family in served, (rule["alert"], name)
    exprs = " ".join(r["expr"] for r in rules)
    assert "> 0.05" in exprs and "> 2" in exprs and "> 1000" in exprs
