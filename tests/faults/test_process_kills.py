"""Faults (make test-slow): with ~1,000 executions in flight, SIGKILL a worker, the
API+projector and the embedded broker, each at a random moment, in a random order.

800 tracked executions get a `log` report per round while 200 orchestrated ones run a
call that fails twice before its retries succeed, a delay of 5–60 s and another call.
Afterwards every execution finishes, every accepted report is there exactly once, every
execution's events are seq 1..n, no orchestrated call that had succeeded ran again, and
the ClickHouse read models equal what a projection rebuild gives. The moments come from
a seed printed with the figures; ``RUNLEDGER_FAULT_SEED`` replays a run.
"""

from __future__ import annotations

import os
import random
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
TRACKED, ORCHESTRATED = 800, 200
WIDE = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}
VICTIMS = {"worker": "runledger.cli worker", "api+projector": "runledger.cli api",
           "broker": "tansu"}  # fmt: skip


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


def _plan(base: str, eid: str, delay_s: int) -> list[dict]:
    """A call that fails twice before it succeeds (retried), a delay, another call. Each
    execution calls its own system: many failing at one would open its circuit."""
    return [{"id": "fetch", "type": "api_call", "system": f"ERP-{eid}",
             "config": {"url": f"{base}/flaky/{eid}"},
             "retry": {"max_retries": 3, "initial_delay": 1}},
            {"id": "wait", "type": "delay", "dependsOn": ["fetch"],
             "config": {"seconds": delay_s}},
            {"id": "post", "type": "api_call", "dependsOn": ["wait"], "system": "FIN",
             "config": {"url": f"{base}/json/{eid}"}}]  # fmt: skip


def _finish_tracked(api: httpx.Client, tracked: list[str]) -> None:
    """Each tracked execution reports its end (in batches the ingest endpoint takes)."""
    for i in range(0, len(tracked), 1000):
        batch = [{"event_id": f"{eid}-end", "execution_id": eid,
                  "event_type": "execution_completed", "timestamp": "2025-09-01T10:05:00Z",
                  "data": {"status": "succeeded"}} for eid in tracked[i:i + 1000]]  # fmt: skip
        r = api.post("/api/v1/events", json={"events": batch})
        assert r.status_code == 202, r.text


def test_kills_at_random_moments_lose_double_and_repeat_nothing(tmp_path: Path):
    seed = int(os.environ.get("RUNLEDGER_FAULT_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    order = rng.sample(sorted(VICTIMS), len(VICTIMS))
    prefix = f"pk{uuid.uuid4().hex[:4]}"
    tracked = [f"{prefix}_t{i}" for i in range(TRACKED)]
    orchestrated = [f"{prefix}_o{i}" for i in range(ORCHESTRATED)]
    p = launch(tmp_path)
    began = time.monotonic()
    kills: list[str] = []
    with serve() as service:
        try:
            p.wait_ready()
            with httpx.Client(base_url=p.base_url, timeout=60) as api:
                for eid in orchestrated:
                    start(api, eid, _plan(service.base_url, eid, rng.randint(5, 60)))
                reporter = Reporter(p.base_url, tracked, pause=0.05)
                reporter.start()
                for victim in order:
                    pause = rng.uniform(1, 10)
                    time.sleep(pause)
                    back = _kill(p, VICTIMS[victim])
                    kills.append(f"{victim} at +{pause:.1f}s, back in {back:.1f}s")
                time.sleep(rng.uniform(1, 5))
                accepted = reporter.stop()
                _finish_tracked(api, tracked)
                context = f"seed {seed}; kills: {'; '.join(kills)}"

                # A request whose answer died with the API may still have been journaled
                # (and so applied): every accepted report is there once, others at most once.
                events_total = 0
                for eid in tracked:
                    d = finished(api, eid, timeout=180)
                    assert d["status"] == "succeeded", (context, d)
                    wanted = {f"{eid}-{n}" for n in reporter.rounds} | {f"{eid}-end"}
                    events = _events(api, eid)
                    assert wanted <= {x["cause_id"] for x in events}, context
                    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), context
                    causes = [e["cause_id"] for e in events if e["event_type"] == "log"]
                    assert len(causes) == len(set(causes)) >= accepted[eid], context
                    events_total += len(events)
                for eid in orchestrated:
                    d = finished(api, eid, timeout=180)
                    assert d["status"] == "succeeded", (context, d)
                    events = _events(api, eid)
                    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), context
                    assert service.count(f"/flaky/{eid}") == 3, context  # 503, 503, 200
                    assert service.count(f"/json/{eid}") == 1, context
                    events_total += len(events)

                before = _aggregates(api)
                assert api.post("/api/v1/admin/projections/rebuild").status_code == 202
                wait_for(lambda: api.get("/api/v1/admin/projections/rebuild").json()["data"]
                         ["state"] in ("finished", "failed"), timeout=180)  # fmt: skip
                rebuild = api.get("/api/v1/admin/projections/rebuild").json()["data"]
                assert rebuild["state"] == "finished", (context, rebuild)
                assert _aggregates(api) == before, context
            print(f"\nfaults: {context}; {TRACKED} tracked ({sum(accepted.values())} reports "
                  f"accepted) and {ORCHESTRATED} orchestrated executions, {events_total} "
                  f"events, all exact; rebuild equal; {time.monotonic() - began:.0f}s")
        finally:
            p.stop()
