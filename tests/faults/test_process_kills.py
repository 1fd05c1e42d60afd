"""Faults (make test-slow): SIGKILL the API+projector, then the embedded broker, while
tracked reports stream in and orchestrated executions (retries, delays) run.

Afterwards every accepted report is there exactly once, every execution's events are
seq 1..n, no orchestrated step that had succeeded was called again, every execution
finishes, and the ClickHouse read models equal what a projection rebuild gives.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Product, Reporter, launch, wait_for
from tests.e2e.plans import finished, start
from tests.http_stub import serve

pytestmark = pytest.mark.slow
TRACKED, ORCHESTRATED = 40, 40
WIDE = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}


def _kill(p: Product, needle: str) -> float:
    """SIGKILL the child whose command line holds ``needle``; seconds until /ready."""
    pid = p.children(needle)[0]
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    wait_for(lambda: p.children(needle) not in ([], [pid]), timeout=60)
    p.wait_ready()
    return time.monotonic() - t0


def _events(api: httpx.Client, eid: str) -> list[dict]:
    return api.get(f"/api/v1/executions/{eid}/events",
                   params={"limit": 1000}).json()["data"]["items"]  # fmt: skip


def _aggregates(api: httpx.Client) -> dict:
    def data(path: str, **params: str) -> dict:
        r = api.get(path, params={**WIDE, **params})
        assert r.status_code == 200, r.text
        return r.json()["data"]

    return {"summary": data("/api/v1/tracking/summary"),
            "systems": data("/api/v1/stats/systems")["items"],
            "workflow": data("/api/v1/stats/workflows/p_e2e"),
            "records": data("/api/v1/tracking/records", limit="1000")["items"]}


def _plan(base: str, eid: str) -> list[dict]:
    """A call that fails twice before it succeeds (retried), a delay, another call. Each
    execution calls its own system: 40 of them failing at one would open its circuit."""
    return [{"id": "fetch", "type": "api_call", "system": f"ERP-{eid}",
             "config": {"url": f"{base}/flaky/{eid}"},
             "retry": {"max_retries": 3, "initial_delay": 1}},
            {"id": "wait", "type": "delay", "dependsOn": ["fetch"], "config": {"seconds": 4}},
            {"id": "post", "type": "api_call", "dependsOn": ["wait"], "system": "FIN",
             "config": {"url": f"{base}/json/{eid}"}}]  # fmt: skip


def test_api_and_broker_kills_lose_double_and_repeat_nothing(tmp_path: Path):
    prefix = f"pk{uuid.uuid4().hex[:4]}"
    tracked = [f"{prefix}_t{i}" for i in range(TRACKED)]
    orchestrated = [f"{prefix}_o{i}" for i in range(ORCHESTRATED)]
    p = launch(tmp_path)
    began = time.monotonic()
    with serve() as service:
        try:
            p.wait_ready()
            with httpx.Client(base_url=p.base_url, timeout=60) as api:
                for eid in orchestrated:
                    start(api, eid, _plan(service.base_url, eid))
                reporter = Reporter(p.base_url, tracked, pause=0.05)
                reporter.start()
                time.sleep(4)
                api_back = _kill(p, "runledger.cli api")
                time.sleep(4)
                broker_back = _kill(p, "tansu")
                time.sleep(4)
                accepted = reporter.stop()

                # A request whose answer died with the API may still have been journaled
                # (and so applied): every accepted report is there once, others at most once.
                for eid in tracked:
                    wanted = {f"{eid}-{n}" for n in reporter.rounds}

                    def arrived(e: str = eid, w: set[str] = wanted) -> list[dict] | None:
                        evs = _events(api, e)
                        return evs if w <= {x["cause_id"] for x in evs} else None

                    events = wait_for(arrived, timeout=120)
                    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
                    causes = [e["cause_id"] for e in events if e["event_type"] == "log"]
                    assert len(causes) == len(set(causes)) >= accepted[eid]
                for eid in orchestrated:
                    d = finished(api, eid, timeout=120)
                    assert d["status"] == "succeeded", d
                    events = _events(api, eid)
                    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
                    assert service.count(f"/flaky/{eid}") == 3  # 503, 503, 200: none again
                    assert service.count(f"/json/{eid}") == 1

                before = _aggregates(api)
                assert api.post("/api/v1/admin/projections/rebuild").status_code == 202
                wait_for(lambda: api.get("/api/v1/admin/projections/rebuild").json()["data"]
                         ["state"] in ("finished", "failed"), timeout=120)  # fmt: skip
                rebuild = api.get("/api/v1/admin/projections/rebuild").json()["data"]
                assert rebuild["state"] == "finished", rebuild
                assert _aggregates(api) == before
            print(f"\nfaults: api+projector back in {api_back:.1f}s, broker back in "
                  f"{broker_back:.1f}s; {TRACKED} tracked ({sum(accepted.values())} reports "
                  f"accepted) and {ORCHESTRATED} orchestrated executions, all exact; rebuild "
                  f"equal; {time.monotonic() - began:.0f}s")
        finally:
            p.stop()
