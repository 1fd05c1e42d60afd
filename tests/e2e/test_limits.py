"""Limits against the real product: a burst of 500 starts against max_running 20 (counted
at the called service), drained in priority order, with queue waits to show for it; the
queue's length limit (429 + Retry-After), changed at runtime through the admin endpoint;
413 and 429 at the edge; 503 while the broker is down."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Product, launch, wait_for
from tests.e2e.plans import detail, new_eid
from tests.http_stub import Stub, serve

CAP = 20
V1 = "/api/v1"


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    p = launch(Path(tmp_path_factory.mktemp("limited")), RUNLEDGER_MAX_RUNNING=str(CAP),
               RUNLEDGER_EXECUTOR_CONCURRENCY="128", RUNLEDGER_LIMITS_POLL_INTERVAL="0.5")
    try:
        p.wait_ready()
        yield p
    finally:
        p.stop()


def data(r: httpx.Response, status: int = 200):  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    return r.json()["data"]


def test_a_burst_waits_within_the_cap_and_drains_in_priority_order(
    limited: Product, service: Stub
):
    wf, url = new_eid("wf_lim"), service.base_url
    api = httpx.Client(base_url=limited.base_url, timeout=60)
    assert data(api.get(f"{V1}/admin/limits"))["executions"]["max_running"] == CAP

    # 20 executions that hold every slot until they are stopped (a wait for input).
    blockers = [new_eid("block") for _ in range(CAP)]
    for eid in blockers:
        data(api.post(f"{V1}/executions", json={"execution_id": eid, "workflow_id": wf,
             "plan": {"steps": [{"id": "ask", "type": "wait_input",
                                 "config": {"prompt": "hold", "timeout_seconds": 600}}]}}), 202)
    wait_for(lambda: all(detail(api, e).get("current_steps") == ["ask"] for e in blockers),
             timeout=60)

    # 480 more: they queue, whatever their priority.
    burst = [(new_eid("burst"), i % 3) for i in range(500 - CAP)]

    def start(item: tuple[str, int]) -> int:
        eid, prio = item
        with httpx.Client(base_url=limited.base_url, timeout=60) as c:
            return c.post(f"{V1}/executions", json={
                "execution_id": eid, "workflow_id": wf, "priority": prio,
                "plan": {"steps": [{"id": "call", "type": "api_call", "system": wf,
                                    "module": f"{wf}_m",
                                    "config": {"url": f"{url}/hold/{wf}/{prio}/{eid}?s=0.2"}}]},
            }).status_code

    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(start, burst)) == {202}
    queue = wait_for(lambda: (q := data(api.get(f"{V1}/queue")))["projected"] == len(burst)
                     and q, timeout=90)  # fmt: skip
    assert queue["length"] == len(burst) and queue["oldest_wait_ms"] > 0
    assert queue["by_workflow"] == [{"workflow_id": wf, "queued": len(burst),
                                     "oldest_wait_ms": queue["by_workflow"][0]["oldest_wait_ms"]}]
    assert detail(api, burst[0][0])["status"] == "queued"
    assert service.count(f"/hold/{wf}/0/{burst[0][0]}") == 0

    # The queue's length limit, changed at runtime: a start past it is refused.
    data(api.put(f"{V1}/admin/limits", json={"max_queued": len(burst)}))
    refused = api.post(f"{V1}/executions", json={"plan": {"steps": [
        {"id": "t", "type": "transform", "config": {"mapping": {"x": "1"}}}]}})
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"]["category"] == "rate_limit"
    data(api.put(f"{V1}/admin/limits", json={"max_queued": 10_000}))
    audit = data(api.get(f"{V1}/audit", params={"action": "limits.set"}))["items"]
    assert len(audit) == 2

    for eid in blockers:  # free the slots: the queue drains, never more than CAP at once
        assert api.post(f"{V1}/executions/{eid}/stop").status_code == 200
    for eid, _ in burst:
        wait_for(lambda eid=eid: detail(api, eid).get("status") == "succeeded", timeout=180)
    assert 1 < service.peak <= CAP, service.peak

    # Drained by priority, then in arrival order: a lower-priority call never comes before
    # more than CAP higher-priority ones (calls admitted together may arrive in any order).
    order = [s.path.split("/") for s in service.seen if s.path.startswith(f"/hold/{wf}/")]
    assert len(order) == len(burst)
    prios = [int(parts[3]) for parts in order]
    for k, p in enumerate(prios):
        assert sum(1 for q in prios[k + 1:] if q > p) <= CAP, (k, p)
    assert prios[-CAP:].count(0) == CAP and prios[:CAP].count(2) == CAP

    # Queue waits show in the statistics.
    stats = data(api.get(f"{V1}/stats/workflows/{wf}"))
    waits = stats["execution_queue_wait"]
    assert waits["count"] == len(burst) + CAP  # the blockers went through the queue too
    assert waits["p95_ms"] >= waits["p50_ms"] > 0
    for group, name in (("systems", wf), ("modules", f"{wf}_m")):
        [item] = data(api.get(f"{V1}/stats/{group}", params={group[:-1]: name}))["items"]
        assert item["execution_queue_wait"]["count"] == len(burst)  # blockers name none
    realtime = data(api.get(f"{V1}/stats/realtime"))
    assert realtime["queue"]["length"] == 0 and realtime["queue"]["wait_ms"]["count"] >= 1
    api.close()


def test_edge_limits_changed_at_runtime_refuse_big_bodies_and_fast_clients(limited: Product):
    api = httpx.Client(base_url=limited.base_url, timeout=30)
    changed = data(api.put(f"{V1}/admin/limits", json={"max_body_bytes": 2_000}))
    assert changed["edge"]["max_body_bytes"] == 2_000
    events = [{"event_id": f"e{i}", "execution_id": new_eid("big"), "event_type": "log",
               "timestamp": "2025-09-01T10:00:00Z", "message": "x" * 100} for i in range(30)]
    big = api.post(f"{V1}/events", json={"events": events})
    assert big.status_code == 413 and big.json()["error"]["code"] == "body_too_large"
    assert api.post(f"{V1}/events", json={"events": events[:2]}).status_code == 202

    data(api.put(f"{V1}/admin/limits", json={"max_body_bytes": 10_485_760, "rate_limit": 2,
                                             "rate_limit_burst": 3}))  # fmt: skip
    key = {"Authorization": "Bearer team-a-key"}
    answers = [api.get(f"{V1}/queue", headers=key) for _ in range(8)]
    assert [r.status_code for r in answers[:3]] == [200, 200, 200]
    refused = [r for r in answers if r.status_code == 429]
    assert refused and int(refused[0].headers["Retry-After"]) >= 1
    assert refused[0].json()["error"]["category"] == "rate_limit"
    assert api.get("/health").status_code == 200  # never limited
    assert api.get(f"{V1}/queue", headers={"Authorization": "Bearer team-b-key"}).status_code \
        == 200  # another key has its own allowance
    restored = wait_for(lambda: (r := api.put(f"{V1}/admin/limits", json={"rate_limit": None}))
                        .status_code == 200 and r, timeout=10)  # fmt: skip
    assert restored.json()["data"]["edge"]["rate_limit"] is None
    assert all(api.get(f"{V1}/queue", headers=key).status_code == 200 for _ in range(8))
    api.close()


def test_a_per_system_cap_changed_at_runtime_reaches_the_executor(limited: Product):
    api = httpx.Client(base_url=limited.base_url, timeout=30)
    changed = data(api.put(f"{V1}/admin/limits", json={"system_concurrency": {"CAPSYS": 2}}))
    assert changed["executor_system_concurrency"] == {"systems": {"CAPSYS": 2}, "default": None}
    time.sleep(2)  # the executor asks for the limits every 0.5 s here
    eids = [new_eid("capped") for _ in range(8)]
    with serve() as stub:
        for eid in eids:
            data(api.post(f"{V1}/executions", json={"execution_id": eid, "plan": {"steps": [
                {"id": "call", "type": "api_call", "system": "CAPSYS",
                 "config": {"url": f"{stub.base_url}/hold/{eid}?s=0.3"}}]}}), 202)
        for eid in eids:
            wait_for(lambda eid=eid: detail(api, eid).get("status") == "succeeded", timeout=60)
        assert stub.peak == 2, stub.peak  # 8 executions could run at once; the cap held 2
    data(api.put(f"{V1}/admin/limits", json={"system_concurrency": None}))
    assert data(api.get(f"{V1}/admin/limits"))["executor_system_concurrency"]["systems"] == {}
    api.close()


@pytest.mark.slow  # two product starts (make test-slow): ~40 s
def test_the_queue_and_its_limits_survive_a_restart(tmp_path: Path):
    root, cap = tmp_path, 2
    with serve() as stub:
        p = launch(root, RUNLEDGER_MAX_RUNNING=str(cap))
        try:
            p.wait_ready()
            with httpx.Client(base_url=p.base_url, timeout=60) as api:
                data(api.put(f"{V1}/admin/limits", json={"max_queued": 500}))  # kept
                blockers = [new_eid("rblock") for _ in range(cap)]
                for eid in blockers:
                    data(api.post(f"{V1}/executions", json={"execution_id": eid, "plan": {
                        "steps": [{"id": "ask", "type": "wait_input",
                                   "config": {"prompt": "hold"}}]}}), 202)  # fmt: skip
                # Starts on other partitions reach the queue in any order: the blockers
                # hold the slots before the others come.
                wait_for(lambda: all(detail(api, e).get("current_steps") == ["ask"]
                                     for e in blockers), timeout=60)  # fmt: skip
                waiting = [new_eid("rq") for _ in range(6)]
                for i, eid in enumerate(waiting):
                    data(api.post(f"{V1}/executions", json={
                        "execution_id": eid, "priority": i % 2, "plan": {"steps": [
                            {"id": "call", "type": "api_call",
                             "config": {"url": f"{stub.base_url}/hold/{eid}?s=0.3"}}]}}), 202)
                wait_for(lambda: data(api.get(f"{V1}/queue"))["projected"] == len(waiting),
                         timeout=60)  # fmt: skip
            p.stop()
            p = launch(root, port=int(p.base_url.rsplit(":", 1)[1]))
            p.wait_ready()
            with httpx.Client(base_url=p.base_url, timeout=60) as api:
                limits = data(api.get(f"{V1}/admin/limits"))["executions"]
                assert (limits["max_running"], limits["max_queued"]) == (cap, 500)
                assert data(api.get(f"{V1}/queue"))["projected"] == len(waiting)
                assert all(detail(api, e)["status"] == "queued" for e in waiting)
                assert not stub.seen  # nothing ran while the product was down
                for eid in blockers:
                    assert api.post(f"{V1}/executions/{eid}/stop").status_code == 200
                for eid in waiting:
                    wait_for(lambda eid=eid: detail(api, eid).get("status") == "succeeded",
                             timeout=90)  # fmt: skip
            assert stub.peak <= cap and len(stub.seen) == len(waiting)
        finally:
            p.stop()


@pytest.mark.slow  # a frozen broker (make test-slow): ~30 s
def test_a_broker_that_takes_no_writes_gets_commands_a_503_and_ready_names_it(
    tmp_path: Path,
):
    p = launch(tmp_path, RUNLEDGER_PUBLISH_TIMEOUT="2", RUNLEDGER_RECONCILE_AFTER="5")
    try:
        p.wait_ready()
        [broker] = p.children("tansu")
        with httpx.Client(base_url=p.base_url, timeout=60) as api:
            eid = new_eid("frozen")
            os.kill(broker, signal.SIGSTOP)  # alive, but it answers nothing
            try:
                started = time.monotonic()
                r = api.post(f"{V1}/executions", json={"mode": "tracked", "execution_id": eid})
                assert r.status_code == 503, r.text  # answered, not left hanging
                assert time.monotonic() - started < 10
                error = r.json()["error"]
                assert (error["code"], error["category"]) == ("broker_unavailable",
                                                              "unavailable")  # fmt: skip
                ready = api.get("/ready")
                assert ready.status_code == 503 and "broker" in ready.json()["missing"]
                assert api.get(f"{V1}/queue").status_code == 200  # reads still answer
            finally:
                os.kill(broker, signal.SIGCONT)
            p.wait_ready()
            # The refused start was journaled all the same: it is appended again (reconcile).
            wait_for(lambda: (detail(api, eid) or {}).get("status") == "running", timeout=90)
    finally:
        p.stop()
