"""Scale-out (make test-slow): three workers share the partitions through their consumer
group; one is SIGKILLed while 300 executions wait in durable delays, and every execution
still finishes once, with gapless events (its partitions' table state comes back from the
changelog). Prints how long after the kill the last execution finished."""

from __future__ import annotations

import os
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import launch, wait_for

pytestmark = pytest.mark.slow
EXECUTIONS = 300
PLAN = {"id": "p_scale", "steps": [
    {"id": "a", "type": "transform", "config": {"mapping": {"x": "1"}}},
    {"id": "wait", "type": "delay", "dependsOn": ["a"], "config": {"seconds": 4}},
    {"id": "b", "type": "transform", "dependsOn": ["wait"], "config": {"mapping": {"y": "2"}}},
]}  # fmt: skip


def test_a_killed_worker_of_three_loses_and_doubles_nothing(tmp_path: Path):
    p = launch(tmp_path, RUNLEDGER_WORKERS="3", RUNLEDGER_PARTITIONS="12")
    try:
        p.wait_ready()
        assert len(p.children("runledger.cli worker")) == 3
        eids = [f"scale_{uuid.uuid4().hex[:6]}_{i}" for i in range(EXECUTIONS)]

        def start(eid: str) -> int:
            with httpx.Client(base_url=p.base_url, timeout=60) as c:
                return c.post("/api/v1/executions", json={"execution_id": eid,
                                                          "plan": PLAN}).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(start, eids)) == {202}
        api = httpx.Client(base_url=p.base_url, timeout=30)

        def status(eid: str) -> str | None:
            return api.get(f"/api/v1/executions/{eid}").json()["data"].get("status")

        wait_for(lambda: all(status(e) == "running" for e in eids[-10:]), timeout=60)
        victim = p.children("runledger.cli worker")[0]
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        for eid in eids:
            wait_for(lambda eid=eid: status(eid) == "succeeded", timeout=120)
        took = time.monotonic() - killed
        print(f"\n{EXECUTIONS} executions, 3 workers, one SIGKILLed while they waited in 4 s "
              f"delays: the last finished {took:.1f} s after the kill")
        for eid in eids:
            events = api.get(f"/api/v1/executions/{eid}/events",
                             params={"limit": 100}).json()["data"]["items"]
            assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), eid
            kinds = [(e["event_type"], e["step_id"]) for e in events]
            for step in ("a", "wait", "b"):  # each step ran once, whoever owned it
                assert kinds.count(("step_succeeded", step)) == 1, (eid, kinds)
            assert kinds.count(("execution_completed", None)) == 1
        api.close()
    finally:
        p.stop()
