"""Topic generations: the embedded broker moves to fresh topics while work goes on.

`make run` with a tiny generation threshold; reports keep arriving and an orchestrated
execution waits in a delay while the product moves to generation 2 and then 3. Every
accepted report must be there exactly once, seq gapless, the delayed step must run once
afterwards, and the old generations' topics must be gone from the broker.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from runledger.kafka import create_topics
from runledger.settings import Settings
from tests.e2e.conftest import Reporter, launch, wait_for
from tests.e2e.plans import detail, finished, start
from tests.http_stub import serve


def _events(api: httpx.Client, eid: str) -> list[dict]:
    """The execution's events; none while it is not known yet."""
    data = api.get(f"/api/v1/executions/{eid}/events", params={"limit": 1000}).json()["data"]
    return data["items"] if data else []


def _generation(api: httpx.Client) -> dict:
    return api.get("/api/v1/stats/realtime").json()["data"]["generation"]


def _report(api: httpx.Client, eids: list[str], message: str) -> None:
    """One log report per execution; wait until each is there, right after the ones
    before (seq gapless, in order)."""
    before = {e: [x["message"] for x in _events(api, e)[1:]] for e in eids}
    reports = [{"event_id": f"{e}-{message}", "execution_id": e, "event_type": "log",
                "timestamp": "2025-09-01T10:00:00Z", "message": message} for e in eids]
    assert api.post("/api/v1/events", json={"events": reports}).status_code == 202
    wait_for(lambda: all(len(_events(api, e)) == len(before[e]) + 2 for e in eids), timeout=60)
    for eid in eids:
        events = _events(api, eid)
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), eid
        assert [e["message"] for e in events[1:]] == [*before[eid], message], eid


async def _topics(port: int) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}")
    await admin.start()
    try:
        return sorted(t for t in await admin.list_topics() if t.startswith("runledger"))
    finally:
        await admin.close()


@pytest.mark.slow  # two full switches under load (make test-slow): ~55 s
def test_two_generation_switches_lose_and_double_nothing(tmp_path: Path):
    eids = [f"gen_{uuid.uuid4().hex[:6]}_{i}" for i in range(20)]
    delayed = f"gdly_{uuid.uuid4().hex[:6]}"
    with serve() as service:
        p = launch(tmp_path, RUNLEDGER_GENERATION_MAX_RECORDS="3000",
                   RUNLEDGER_GENERATION_CHECK_INTERVAL="0.5")  # fmt: skip
        try:
            p.wait_ready()
            with httpx.Client(base_url=p.base_url, timeout=60) as api:
                assert _generation(api)["number"] == 1
                start(api, delayed, [
                    {"id": "wait", "type": "delay", "config": {"seconds": 8}},
                    {"id": "call", "type": "api_call", "dependsOn": ["wait"],
                     "config": {"url": f"{service.base_url}/json/{delayed}"}}])  # fmt: skip
                reporter = Reporter(p.base_url, eids, pause=0.02)
                reporter.start()
                try:
                    info = wait_for(lambda: (g := _generation(api))["switches"] >= 2 and g,
                                    timeout=120)  # fmt: skip
                finally:
                    accepted = reporter.stop()
                assert info["number"] >= 3
                assert set(info["last_switch"]) >= {"workers_stopped_s", "restore_s",
                                                    "total_s"}  # fmt: skip
                assert min(accepted.values()) > 0

                def all_there() -> bool:
                    return all(len(_events(api, e)) >= accepted[e] + 1 for e in eids)

                wait_for(all_there, timeout=90)
                for eid in eids:
                    events = _events(api, eid)
                    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), eid
                    logs = [e for e in events if e["event_type"] == "log"]
                    assert len(logs) == accepted[eid], eid  # none lost, none doubled
                    assert len({e["cause_id"] for e in logs}) == len(logs)

                assert finished(api, delayed, timeout=60)["status"] == "succeeded"
                # A call in flight when its generation ends is made again in the next one
                # (its result went to a topic nobody reads any more), under the same key.
                keys = service.keys(f"/json/{delayed}")
                assert keys[:1] == [f"{delayed}/call/1"] and set(keys) == {keys[0]}
                assert len(keys) <= 2
                [call] = [s for s in detail(api, delayed)["steps"] if s["step_id"] == "call"]
                assert call["attempts"] == 1
                seqs = [e["seq"] for e in _events(api, delayed)]
                assert seqs == list(range(1, len(seqs) + 1))
                assert detail(api, delayed)["status"] == "succeeded"

                # Only the current generation's topics are left (stale ones go at the
                # next check).
                seen: list[str] = []

                def only_current() -> bool:
                    now = _generation(api)["number"]  # another switch may have come meanwhile
                    seen[:] = [f"generation {now}", *asyncio.run(_topics(p.kafka_port))]
                    return f"runledger.g{now}.events" in seen and all(
                        t.startswith((f"runledger.g{now}.", f"runledger-worker-g{now}-"))
                        for t in seen[1:])  # fmt: skip

                try:
                    wait_for(only_current, timeout=30)
                except TimeoutError:
                    raise AssertionError(f"more than one generation: {seen}") from None
        finally:
            p.stop()


@pytest.mark.slow
def test_a_switch_cut_short_is_finished_by_the_next_api_start(tmp_path: Path):
    """The API dies right after creating generation 2's topics (the workers move there,
    nothing is restored yet): the next API start projects the rest of generation 1,
    restores into 2 and deletes 1, and the executions go on with their seq."""
    eids = [f"cut_{uuid.uuid4().hex[:6]}_{i}" for i in range(5)]
    p = launch(tmp_path)
    try:
        p.wait_ready()
        with httpx.Client(base_url=p.base_url, timeout=60) as api:
            _report(api, eids, "one")
            settings = Settings(kafka_bootstrap=f"127.0.0.1:{p.kafka_port}", partitions=4)
            asyncio.run(create_topics(settings.at_generation(2)))  # what the switch does first
            [api_pid] = p.children("runledger.cli api")
            os.kill(api_pid, signal.SIGKILL)
            p.wait_ready(timeout=120)
            assert _generation(api)["number"] == 2
            _report(api, eids, "two")  # seq goes on where generation 1 left it
            topics = asyncio.run(_topics(p.kafka_port))
            assert not [t for t in topics if ".g1." in t or "-g1-" in t], topics
    finally:
        p.stop()


@pytest.mark.slow
def test_a_quiet_generation_moves_on_after_a_burst(tmp_path: Path):
    """Reports keep coming, then stop: no switch while they come, then the product moves
    to generation 2 on its own (due: quiet), every accepted report is there once, and
    the executions go on there with their seq."""
    eids = [f"quiet_{uuid.uuid4().hex[:6]}_{i}" for i in range(10)]
    p = launch(tmp_path, RUNLEDGER_GENERATION_QUIET_SECONDS="3",
               RUNLEDGER_GENERATION_QUIET_MIN_RECORDS="200",
               RUNLEDGER_GENERATION_CHECK_INTERVAL="0.5")  # fmt: skip
    try:
        p.wait_ready()
        with httpx.Client(base_url=p.base_url, timeout=60) as api:
            reporter = Reporter(p.base_url, eids, pause=0.05)
            reporter.start()
            try:
                time.sleep(8)  # hundreds of records a second, for longer than the quiet window
                busy = _generation(api)
            finally:
                accepted = reporter.stop()
            assert (busy["number"], busy["switches"]) == (1, 0)
            assert busy["records"] >= 200
            info = wait_for(lambda: (g := _generation(api))["switches"] >= 1 and g, timeout=60)
            assert info["number"] == 2 and info["last_switch"]["due"] == "quiet"
            # each execution: the event that created it, then one per accepted report
            wait_for(lambda: all(len(_events(api, e)) == accepted[e] + 1 for e in eids),
                     timeout=60)  # fmt: skip
            more = [{"event_id": f"{e}-after", "execution_id": e, "event_type": "log",
                     "timestamp": "2025-09-01T10:00:00Z", "message": "after"} for e in eids]
            assert api.post("/api/v1/events", json={"events": more}).status_code == 202
            wait_for(lambda: all(len(_events(api, e)) == accepted[e] + 2 for e in eids),
                     timeout=60)  # fmt: skip
            for eid in eids:  # none lost, none doubled, seq gapless across the switch
                events = _events(api, eid)
                assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), eid
                assert events[-1]["message"] == "after"
            topics = asyncio.run(_topics(p.kafka_port))
            assert not [t for t in topics if ".g1." in t or "-g1-" in t], topics
    finally:
        p.stop()


@pytest.mark.slow
@pytest.mark.parametrize("role", ["worker", "executor"])
def test_a_switch_right_after_a_process_is_killed_goes_through(tmp_path: Path, role: str):
    """A worker SIGKILLed just before a switch stays a member of generation 1's group (the
    broker does not expire it by itself) and its replacement starts in generation 2: it
    ends the dead worker's generation-1 membership, so the switch, which waits until
    generation 1's group is empty, goes on; and every execution goes on with its seq."""
    eids = [f"kill_{uuid.uuid4().hex[:6]}_{i}" for i in range(5)]
    p = launch(tmp_path, RUNLEDGER_GENERATION_CHECK_INTERVAL="0.5")
    try:
        p.wait_ready()
        with httpx.Client(base_url=p.base_url, timeout=60) as api:
            _report(api, eids, "one")
            [pid] = p.children(f"runledger.cli {role}")
            os.kill(pid, signal.SIGKILL)
            # what the switch does first, before the supervisor restarts it (0.5 s)
            settings = Settings(kafka_bootstrap=f"127.0.0.1:{p.kafka_port}", partitions=4)
            asyncio.run(create_topics(settings.at_generation(2)))
            info = wait_for(lambda: (g := _generation(api))["switches"] >= 1 and g, timeout=60)
            assert info["number"] == 2 and info["last_switch"]["due"] == "unfinished"
            log = p.log_path.read_text(errors="replace")
            group = "runledger-worker-g1" if role == "worker" else "runledger-executors-g1"
            assert f"left {group} for the previous process" in log
            _report(api, eids, "two")  # seq goes on where generation 1 left it
    finally:
        p.stop()
