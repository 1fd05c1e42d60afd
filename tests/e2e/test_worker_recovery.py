"""A worker killed with SIGKILL (broker alive) comes back with its table exact.

This is the test that catches the embedded broker's end-offset bug: with it, Faust stops
table recovery early, the last state updates are lost, and the next report of such an
execution would start over at seq 1 instead of continuing.
"""

from __future__ import annotations

import os
import re
import signal
import uuid

import httpx

from tests.e2e.conftest import Product, wait_for
from tests.e2e.test_tracked import step_reports

EXECUTIONS = 60


def test_sigkill_worker_then_every_execution_continues_its_seq(
    api: httpx.Client, product: Product
):
    run = uuid.uuid4().hex[:8]
    eids = [f"rec_{run}_{i}" for i in range(EXECUTIONS)]
    # Several updates per execution, in several batches, so the changelog holds
    # multi-record batches (where the broker's end offset is wrong).
    for step in range(3):
        events = [e for eid in eids for e in step_reports(eid, f"st{step}", "ERP", step * 10,
                                                           step * 10 + 5)]
        assert api.post("/api/v1/events", json={"events": events}).status_code == 202

    def all_at(seq: int) -> bool:
        return all(api.get(f"/api/v1/executions/{eid}").json()["data"].get("last_seq") == seq
                   for eid in eids)

    wait_for(lambda: all_at(7), timeout=60)  # started + 3 × (started, succeeded)

    def preloads() -> list[int]:  # keys each worker start bulk-loaded into its table
        return [int(n) for n in re.findall(r"table preloaded: (\d+) keys",
                                           product.log_path.read_text(errors="replace"))]

    before = len(preloads())
    [worker] = product.children("runledger.cli worker")
    os.kill(worker, signal.SIGKILL)
    wait_for(lambda: product.children("runledger.cli worker") not in ([], [worker]), timeout=30)
    wait_for(lambda: api.get("/ready").status_code == 200, timeout=60)
    # The table came back by the bulk read, not by Faust's per-record recovery
    wait_for(lambda: len(preloads()) > before, timeout=60)
    assert preloads()[-1] >= EXECUTIONS
    # Its replacement ended the killed worker's membership at once: its join did not wait
    # for the dead member, nor did a second rebalance follow when that expired
    log = product.log_path.read_text(errors="replace")
    joined = re.findall(rf'"pid": {worker}, .*Joined group .* with member_id ([\w.-]+)', log)
    assert joined and f"left runledger-worker-g1 for the previous process: {joined[-1]}" in log

    final = [e for eid in eids for e in step_reports(eid, "last", "ERP", 100, 110)]
    assert api.post("/api/v1/events", json={"events": final}).status_code == 202
    wait_for(lambda: all_at(9), timeout=90)
    for eid in eids:
        events = api.get(f"/api/v1/executions/{eid}/events").json()["data"]["items"]
        assert [e["seq"] for e in events] == list(range(1, 10)), eid
        assert [e["event_type"] for e in events].count("execution_started") == 1
        steps = {s["step_id"]: s["status"] for s in
                 api.get(f"/api/v1/executions/{eid}").json()["data"]["steps"]}
        assert steps == {"st0": "succeeded", "st1": "succeeded", "st2": "succeeded",
                         "last": "succeeded"}
