"""Nothing accepted is lost when `make run` restarts, is killed, or loses its broker.

The embedded broker keeps nothing across a restart: ClickHouse (the journal and the
events archive) is the durable record, and the API restores the broker from it.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Product, Reporter, launch, wait_for
from tests.e2e.test_tracked import step_reports
from tests.http_stub import serve


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def _client(p: Product) -> httpx.Client:
    return httpx.Client(base_url=p.base_url, timeout=30)


def _events(api: httpx.Client, eid: str) -> list[dict]:
    return api.get(f"/api/v1/executions/{eid}/events", params={"limit": 1000}).json()[
        "data"]["items"]


def _detail(api: httpx.Client, eid: str) -> dict:
    return api.get(f"/api/v1/executions/{eid}").json()["data"]


def _all_succeed(api: httpx.Client, *eids: str) -> None:
    for eid in eids:
        wait_for(lambda eid=eid: _detail(api, eid)["status"] == "succeeded", timeout=90)


def test_sigterm_then_start_again_keeps_everything_and_running_work_continues(root: Path):
    plan = {"id": "p_restart", "steps": [{"id": "a", "system": "ERP"},
                                         {"id": "b", "system": "FIN", "dependsOn": ["a"]}]}
    running, done = f"run_{uuid.uuid4().hex[:8]}", f"done_{uuid.uuid4().hex[:8]}"
    p = launch(root)
    try:
        p.wait_ready()
        with _client(p) as api:
            for eid in (running, done):
                body = {"mode": "tracked", "execution_id": eid, "plan": plan}
                assert api.post("/api/v1/executions", json=body).status_code == 202
                wait_for(lambda eid=eid: _detail(api, eid).get("last_seq") == 1)
            reports = step_reports(running, "a", "ERP", 0, 10) + step_reports(
                done, "a", "ERP", 0, 10) + step_reports(done, "b", "FIN", 20, 30, ok=False)
            reports.append({"event_id": f"{running}-log", "execution_id": running,
                            "event_type": "log", "timestamp": "2025-09-01T10:00:00Z",
                            "message": "half way", "data": {"level": "warn"}})
            assert api.post("/api/v1/events", json={"events": reports}).status_code == 202
            wait_for(lambda: _detail(api, done)["status"] == "failed"
                     and _detail(api, running).get("last_seq") == 4, timeout=30)
            before = {eid: _events(api, eid) for eid in (running, done)}
            summary = api.get("/api/v1/tracking/summary", params={"execution_id": done}).json()
            logs = api.get(f"/api/v1/executions/{running}/logs").json()
    finally:
        assert p.stop(signal.SIGTERM) == 0
    assert not p.children("")  # nothing left behind

    p = launch(root)
    try:
        p.wait_ready()
        with _client(p) as api:
            assert {eid: _events(api, eid) for eid in (running, done)} == before
            assert api.get("/api/v1/tracking/summary",
                           params={"execution_id": done}).json() == summary
            assert api.get(f"/api/v1/executions/{running}/logs").json() == logs
            audit = api.get("/api/v1/audit", params={"execution_id": running}).json()["data"]
            assert [a["action"] for a in audit["items"]] == ["start", "report"]
            more = step_reports(running, "b", "FIN", 40, 50)
            assert api.post("/api/v1/events", json={"events": more}).status_code == 202
            final = wait_for(lambda: (d := _detail(api, running))["status"] == "succeeded" and d)
            after = _events(api, running)
            assert after[:len(before[running])] == before[running]
            assert [e["seq"] for e in after] == list(range(1, len(after) + 1))
            assert final["last_seq"] == len(before[running]) + 3  # started, succeeded, done
    finally:
        p.stop()


@pytest.mark.slow  # a fault test of ~45 s: in make test-slow, beside the other kills
def test_a_delay_and_a_call_in_flight_survive_a_full_restart(root: Path):
    """Durable timers and tasks: the product stops during a 4 s delay (another execution has
    a call in flight); after a restart the delay still fires, the call is made again under
    the same Idempotency-Key, and no step that had succeeded is called again."""
    with serve() as service:
        url = service.base_url
        delayed, calling = f"dly_{uuid.uuid4().hex[:8]}", f"cal_{uuid.uuid4().hex[:8]}"
        p = launch(root)
        try:
            p.wait_ready()
            with _client(p) as api:
                api.post("/api/v1/executions", json={"execution_id": delayed, "plan": {"steps": [
                    {"id": "first", "type": "api_call", "config": {"url": f"{url}/json/{delayed}"}},
                    {"id": "wait", "type": "delay", "dependsOn": ["first"],
                     "config": {"seconds": 4}},
                    {"id": "last", "type": "api_call", "dependsOn": ["wait"],
                     "config": {"url": f"{url}/json/{delayed}/last"}}]}})  # fmt: skip
                api.post("/api/v1/executions", json={"execution_id": calling, "plan": {"steps": [
                    {"id": "slow", "type": "api_call", "timeout": 30,
                     "config": {"url": f"{url}/slow/{calling}?s=12"}}]}})  # fmt: skip
                wait_for(lambda: _detail(api, delayed).get("current_steps") == ["wait"]
                         and service.count(f"/slow/{calling}") == 1)
        finally:
            assert p.stop(signal.SIGTERM) == 0
        p = launch(root)
        try:
            p.wait_ready()
            with _client(p) as api:
                _all_succeed(api, delayed, calling)
            assert service.count(f"/json/{delayed}") == 1
            assert service.count(f"/json/{delayed}/last") == 1
            # Cut off by the stop (12 s > the executor's 10 s grace), called again after it
            # with the same key: the service can tell it is the same task.
            assert service.keys(f"/slow/{calling}") == [f"{calling}/slow/1"] * 2
        finally:
            p.stop()


def test_sub_executions_running_or_finished_survive_a_full_restart(root: Path):
    """One parent's child is in a 4 s delay when the product stops, another's child has
    finished while its parent waits in a delay: after the restart (the broker restored from
    ClickHouse) both parents succeed, no child runs again, every call is made once."""
    with serve() as service:
        url = service.base_url
        running, done = f"par_{uuid.uuid4().hex[:8]}", f"pad_{uuid.uuid4().hex[:8]}"

        def parent(eid: str, child: list[dict], after: list[dict]) -> dict:
            return {"execution_id": eid, "plan": {"steps": [
                {"id": "sub", "type": "sub_execution", "config": {"plan": {"steps": child}}},
                *after,
                {"id": "last", "type": "api_call", "dependsOn": [after[-1]["id"] if after
                                                                 else "sub"],
                 "config": {"url": f"{url}/json/{eid}/last"}}]}}  # fmt: skip

        p = launch(root)
        try:
            p.wait_ready()
            with _client(p) as api:
                assert api.post("/api/v1/executions", json=parent(running, [
                    {"id": "wait", "type": "delay", "config": {"seconds": 4}},
                    {"id": "call", "type": "api_call", "dependsOn": ["wait"],
                     "config": {"url": f"{url}/json/{running}/child"}}], [])).status_code == 202
                assert api.post("/api/v1/executions", json=parent(done, [
                    {"id": "call", "type": "api_call",
                     "config": {"url": f"{url}/json/{done}/child"}}], [
                    {"id": "wait", "type": "delay", "dependsOn": ["sub"],
                     "config": {"seconds": 4}}])).status_code == 202  # fmt: skip
                wait_for(lambda: _detail(api, done).get("current_steps") == ["wait"]
                         and _detail(api, f"{running}.sub.1").get("current_steps") == ["wait"])
                child_seq = _detail(api, f"{done}.sub.1")["last_seq"]
        finally:
            assert p.stop(signal.SIGTERM) == 0
        p = launch(root)
        try:
            p.wait_ready()
            with _client(p) as api:
                _all_succeed(api, running, done)
                assert _detail(api, f"{running}.sub.1")["status"] == "succeeded"
                assert _detail(api, f"{done}.sub.1")["last_seq"] == child_seq
            for eid in (running, done):
                assert service.count(f"/json/{eid}/child") == 1
                assert service.count(f"/json/{eid}/last") == 1
        finally:
            p.stop()


@pytest.mark.slow  # a fault test (make test-slow): ~30-55 s
def test_sigkill_of_every_process_loses_no_accepted_report_and_doubles_nothing(root: Path):
    p = launch(root)
    p.wait_ready()
    eids = [f"kill_{uuid.uuid4().hex[:6]}_{i}" for i in range(20)]
    reporter = Reporter(p.base_url, eids)
    reporter.start()
    wid = f"wf_kill_{uuid.uuid4().hex[:6]}"
    with _client(p) as api:  # a saved workflow's versions live in ClickHouse, not in memory
        assert api.post("/api/v1/workflows", json={"id": wid, "name": "kept"}).status_code == 201
        steps = [{"id": "t", "type": "transform", "config": {"mapping": {"a": "1"}}}]
        assert api.put(f"/api/v1/workflows/{wid}", json={"steps": steps}).status_code == 200
    time.sleep(4)
    p.kill_everything()
    accepted = reporter.stop()
    assert min(accepted.values()) > 0

    p = launch(root)
    try:
        p.wait_ready()
        with _client(p) as api:
            versions = api.get(f"/api/v1/workflows/{wid}/versions").json()["data"]["items"]
            assert [v["version"] for v in versions] == [1, 2]
            ran = api.post(f"/api/v1/workflows/{wid}/execute")
            assert ran.status_code == 202, ran.text
            def all_there() -> bool:
                return all(_detail(api, eid).get("last_seq", 0) >= accepted[eid] + 1
                           for eid in eids)

            wait_for(all_there, timeout=60)
            time.sleep(1.0)
            for eid in eids:
                events = _events(api, eid)
                assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
                report_ids = [e["cause_id"] for e in events if e["event_type"] == "log"]
                assert len(report_ids) == len(set(report_ids))  # nothing doubled
                # every accepted report is there (a request cut off mid-flight may add one)
                assert accepted[eid] <= len(report_ids) <= accepted[eid] + 1
    finally:
        p.stop()


@pytest.mark.slow  # a fault test (make test-slow): ~30-55 s
def test_sigkill_of_the_broker_alone_is_restored_and_work_goes_on(root: Path):
    p = launch(root)
    try:
        p.wait_ready()
        eid = f"brk_{uuid.uuid4().hex[:8]}"
        with _client(p) as api:
            api.post("/api/v1/executions", json={"mode": "tracked", "execution_id": eid,
                                                 "plan": {"steps": [
                {"id": "a"}, {"id": "b", "dependsOn": ["a"]}]}})  # fmt: skip
            wait_for(lambda: _detail(api, eid).get("last_seq") == 1)
            api.post("/api/v1/events", json={"events": step_reports(eid, "a", "ERP", 0, 10)})
            wait_for(lambda: _detail(api, eid).get("last_seq") == 3)
            before = _events(api, eid)
            [broker] = p.children("tansu")
            signal_broker = __import__("os").kill
            signal_broker(broker, signal.SIGKILL)
            wait_for(lambda: p.children("tansu") not in ([], [broker]), timeout=60)
            p.wait_ready()
            assert api.post("/api/v1/events", json={
                "events": step_reports(eid, "b", "ERP", 20, 30)}).status_code == 202
            final = wait_for(lambda: (d := _detail(api, eid))["status"] == "succeeded" and d,
                             timeout=60)
            after = _events(api, eid)
            assert after[:3] == before and final["last_seq"] == 6
            assert [e["seq"] for e in after] == [1, 2, 3, 4, 5, 6]
    finally:
        p.stop()


_COUNT_EVENTS = """
import sys, clickhouse_connect
c = clickhouse_connect.get_client(dsn="chdb://" + sys.argv[1])
print(c.query("SELECT count() FROM (SELECT * FROM runledger.events FINAL) "
              "WHERE startsWith(execution_id, {p:String})", parameters={"p": sys.argv[2]})
      .result_rows[0][0])
"""


def test_graceful_stop_drains_workers_and_projector_before_exit(root: Path):
    """Reports accepted just before SIGTERM are applied and projected before the product
    exits: ClickHouse holds their events right after the stop, before any restart."""
    import subprocess
    import sys

    p = launch(root)
    prefix = f"drain_{uuid.uuid4().hex[:6]}_"
    try:
        p.wait_ready()
        eids = [f"{prefix}{i}" for i in range(300)]
        reports = [e for eid in eids for e in step_reports(eid, "a", "ERP", 0, 10)]
        with _client(p) as api:
            assert api.post("/api/v1/events", json={"events": reports}).status_code == 202
    finally:
        assert p.stop(signal.SIGTERM) == 0
    out = subprocess.run([sys.executable, "-c", _COUNT_EVENTS, str(p.data_dir / "clickhouse"),
                          prefix], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.strip()) == 300 * 3  # execution_started + started + succeeded
