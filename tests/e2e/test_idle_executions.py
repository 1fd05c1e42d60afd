"""A reported execution that never gets an end leaves the worker's memory after
RUNLEDGER_IDLE_TTL with no event (3 s in the session's product), and comes back whole:
its next report continues it, and its tracked idle timeout still ends it, also when the
product restarted meanwhile (streams/hot_set.py, api/idle_sweep.py)."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from runledger.kafka import changelog_topic
from runledger.settings import Settings
from tests.e2e.conftest import Product, launch, wait_for
from tests.e2e.test_tracked import detail, step_reports


async def _tombstones(port: int, generation: int) -> set[str]:
    """The execution ids the worker's table deleted: tombstones on its changelog."""
    topic = changelog_topic(Settings(kafka_bootstrap=f"127.0.0.1:{port}",
                                     generation=generation))  # fmt: skip
    consumer = AIOKafkaConsumer(bootstrap_servers=f"127.0.0.1:{port}", enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        assert tps, f"no topic {topic}"
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        left = {tp: end for tp, end in (await consumer.end_offsets(tps)).items() if end}
        gone: set[str] = set()
        while left:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                gone |= {r.key.decode() for r in records if r.value is None and r.key}
                if records and records[-1].offset + 1 >= left.get(tp, 0):
                    left.pop(tp, None)
        return gone
    finally:
        await consumer.stop()


def _evicted(p: Product, api: httpx.Client, eid: str) -> bool:
    generation = api.get("/api/v1/stats/realtime").json()["data"]["generation"]["number"]
    return eid in asyncio.run(_tombstones(p.kafka_port, generation))


def _events(api: httpx.Client, eid: str) -> list[tuple[int, str, str | None]]:
    items = api.get(f"/api/v1/executions/{eid}/events").json()["data"]["items"]
    return [(e["seq"], e["event_type"], e.get("step_id")) for e in items]


def _evictions(api: httpx.Client) -> float:
    lines = [ln for ln in api.get("/metrics").text.splitlines()
             if ln.startswith('runledger_worker_evictions_total{kind="idle"}')]  # fmt: skip
    return float(lines[0].split()[-1]) if lines else 0.0


def test_an_idle_reported_execution_leaves_the_worker_and_its_next_report_continues_it(
    product: Product, api: httpx.Client
):
    eid = f"idle_{uuid.uuid4().hex[:8]}"
    assert api.post("/api/v1/events", json={"events": step_reports(eid, "a", "ERP", 0, 5)}
                    ).status_code == 202  # fmt: skip
    wait_for(lambda: detail(api, eid).get("last_seq") == 3)
    wait_for(lambda: _evicted(product, api, eid), timeout=30)
    assert _evictions(api) >= 1

    # Out of the worker's table, its next report would start over at seq 1 if the API did
    # not put the archived state in front of it (tests/integration/test_worker.py).
    assert api.post("/api/v1/events", json={"events": step_reports(eid, "b", "FIN", 10, 15)}
                    ).status_code == 202  # fmt: skip
    wait_for(lambda: detail(api, eid).get("last_seq") == 5)
    assert _events(api, eid) == [(1, "execution_started", None),
                                 (2, "step_started", "a"), (3, "step_succeeded", "a"),
                                 (4, "step_started", "b"), (5, "step_succeeded", "b")]
    d = detail(api, eid)
    assert d["status"] == "running"
    assert [(s["step_id"], s["status"]) for s in d["steps"]] == [("a", "succeeded"),
                                                                 ("b", "succeeded")]


def test_the_idle_timeout_ends_an_evicted_execution_also_after_a_restart(tmp_path: Path):
    """RUNLEDGER_TRACKED_IDLE_TIMEOUT 8 s, idle TTL 1 s: both executions are out of the
    worker long before their timeout. One is ended by the sweep before a restart, the
    other after it (restore leaves idle ones in the archive, as the worker did)."""
    env = {"RUNLEDGER_IDLE_TTL": "1", "RUNLEDGER_TRACKED_IDLE_TIMEOUT": "8",
           "RUNLEDGER_IDLE_SWEEP_INTERVAL": "1"}
    before, after = (f"{k}_{uuid.uuid4().hex[:8]}" for k in ("before", "after"))
    p = launch(tmp_path, **env)
    try:
        p.wait_ready()
        with httpx.Client(base_url=p.base_url, timeout=30) as api:
            assert api.post("/api/v1/events", json={"events": step_reports(before, "a", "ERP",
                            0, 5)}).status_code == 202  # fmt: skip
            wait_for(lambda: _evicted(p, api, before), timeout=30)
            ended = wait_for(lambda: (d := detail(api, before))["status"] == "failed" and d,
                             timeout=60)  # fmt: skip
            assert ended["error_type"] == "Abandoned"
            assert _events(api, before)[-1][:2] == (4, "execution_completed")
            assert api.post("/api/v1/events", json={"events": step_reports(after, "a", "ERP",
                            0, 5)}).status_code == 202  # fmt: skip
            wait_for(lambda: _evicted(p, api, after), timeout=30)
    finally:
        assert p.stop(signal.SIGTERM) == 0
    p = launch(tmp_path, **env)  # the same data dir, a new (empty) broker
    try:
        p.wait_ready()
        with httpx.Client(base_url=p.base_url, timeout=30) as api:
            ended = wait_for(lambda: (d := detail(api, after))["status"] == "failed" and d,
                             timeout=60)  # fmt: skip
            assert ended["error_type"] == "Abandoned"
            assert [e[:2] for e in _events(api, after)] == [
                (1, "execution_started"), (2, "step_started"), (3, "step_succeeded"),
                (4, "execution_completed")]
            assert detail(api, before)["status"] == "failed"  # and nothing more of it
            assert len(_events(api, before)) == 4
    finally:
        assert p.stop(signal.SIGTERM) == 0
