"""The embedded broker, topic creation and the end-offset correction, against a real broker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.consumer.fetcher import Fetcher

from runledger import broker_quirks, kafka
from runledger.settings import Settings
from runledger.supervisor import child_env, next_failures, restart_delay
from tests.conftest import free_port


def _other_prefix(settings: Settings) -> Settings:
    return settings.model_copy(update={"topic_prefix": f"t{uuid.uuid4().hex[:8]}"})


async def _partition_counts(settings: Settings, names: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}


def test_topic_names(kafka_settings: Settings) -> None:
    p = kafka_settings.topic_prefix
    assert kafka.worker_app_id(kafka_settings) == f"{p}-worker"
    assert kafka.topic_names(kafka_settings) == [
        f"{p}.commands",
        f"{p}.step-events",
        f"{p}.tasks",
        f"{p}.events",
        f"{p}.dead-letters",
        f"{p}-worker-executions-changelog",
    ]


async def test_create_topics_is_idempotent(kafka_settings: Settings) -> None:
    settings = _other_prefix(kafka_settings)
    await kafka.create_topics(settings)
    await kafka.create_topics(settings)  # already there: fine
    names = kafka.topic_names(settings)
    assert await _partition_counts(settings, names) == dict.fromkeys(names, settings.partitions)


async def test_partition_mismatch_is_refused(kafka_settings: Settings) -> None:
    settings = _other_prefix(kafka_settings)
    events = settings.topic("events")
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(events, 2, 1)])
    finally:
        await admin.close()

    with pytest.raises(kafka.TopicPartitionMismatch) as info:
        await kafka.create_topics(settings)
    assert (info.value.topic, info.value.expected, info.value.actual) == (events, 4, 2)
    assert events in str(info.value) and "2" in str(info.value) and "4" in str(info.value)


async def test_end_offsets_are_the_log_end(kafka_settings: Settings) -> None:
    topic = f"{kafka_settings.topic_prefix}.offsets-{uuid.uuid4().hex[:6]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        await admin.close()

    producer = kafka.make_producer(kafka_settings, linger_ms=50)
    await producer.start()
    try:
        # Batches of 1, 5, 1, 3 and 7 records (offsets 0, 1-5, 6, 7-9, 10-16).
        for size in (1, 5, 1, 3, 7):
            sends = [await producer.send(topic, b"x%d" % i, partition=0) for i in range(size)]
            await asyncio.gather(*sends)
        last = await sends[-1]
        assert last.offset == 16
    finally:
        await producer.stop()

    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    consumer = kafka.make_consumer(kafka_settings)
    await consumer.start()
    try:
        # What the broker itself answers to ListOffsets(LATEST). Tansu 0.6.0 says 11 here:
        # the base offset (10) of the newest batch + 1, not the log end (17). Apache Kafka
        # says 17.
        raw_call = Fetcher.end_offsets.__wrapped__  # type: ignore[attr-defined]
        raw = await raw_call(consumer._fetcher, [p0, p1], 5000)
        assert raw[p0] in (11, 17) and raw[p1] == 0

        assert await consumer.end_offsets([p0, p1]) == {p0: 17, p1: 0}

        # What a reader sees agrees with the corrected value.
        consumer.assign([p0])
        await consumer.seek_to_beginning(p0)
        got = await consumer.getmany(p0, timeout_ms=2000, max_records=100)
        assert [r.offset for r in got[p0]][-1] == 16
    finally:
        await consumer.stop()


def test_patch_is_idempotent() -> None:
    broker_quirks.patch_end_offsets()
    patched = Fetcher.end_offsets
    broker_quirks.patch_end_offsets()
    assert Fetcher.end_offsets is patched
    assert not hasattr(Fetcher.end_offsets.__wrapped__, "__wrapped__")  # type: ignore[attr-defined]


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "RUNLEDGER_LOG_LEVEL": "CRITICAL", **env}
    return subprocess.run(
        [sys.executable, "-m", "runledger.cli", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_topics_create(kafka_settings: Settings) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    env = {"RUNLEDGER_KAFKA_BOOTSTRAP": kafka_settings.bootstrap, "RUNLEDGER_TOPIC_PREFIX": prefix}
    ok = _cli("topics", "create", RUNLEDGER_PARTITIONS="4", **env)
    assert ok.returncode == 0, ok.stderr
    bad = _cli("topics", "create", RUNLEDGER_PARTITIONS="3", **env)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1].startswith("error: topic ")
    assert "Traceback" not in bad.stderr


def test_cli_unreachable_broker() -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    result = _cli("topics", "create", RUNLEDGER_KAFKA_BOOTSTRAP=bootstrap)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"error: cannot reach Kafka at {bootstrap}"]


def test_restart_backoff_policy() -> None:
    assert [restart_delay(n) for n in range(0, 8)] == [0.0, 0.5, 1, 2, 4, 8, 10, 10]
    assert restart_delay(10_000) == 10
    assert next_failures(3, uptime=1.0) == 4  # crash loop: back off further
    assert next_failures(3, uptime=60.0) == 1  # ran fine for a while: start afresh


def test_child_env_round_trips_settings(
    kafka_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = child_env(kafka_settings, 3, {"RUNLEDGER_WORKER_INDEX": "2"})
    assert env["RUNLEDGER_WORKERS"] == "3"
    assert env["RUNLEDGER_WORKER_INDEX"] == "2"
    for key, value in env.items():
        if key.startswith("RUNLEDGER_"):
            monkeypatch.setenv(key, value)
    seen_by_child = Settings()
    assert seen_by_child.model_dump() == {**kafka_settings.model_dump(), "workers": 3}


# ------------------------------------------------ supervisor, with stand-in children

_SUPERVISED = """
import os, sys
from runledger import supervisor
from runledger.settings import Settings

piddir = sys.argv[1]
sleeper = [sys.executable, "-c",
           "import os, sys, time; open(os.path.join(sys.argv[1], str(os.getpid())), 'w').close(); "
           "time.sleep(600)", piddir]
sv = supervisor.Supervisor(Settings(), 2)
sv.build_children = lambda: sv.children.extend(
    supervisor.Child(name, sleeper, dict(os.environ)) for name in ("worker-0", "worker-1", "api")
)
sys.exit(sv.run())
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def _wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _start_supervisor(settings: Settings, piddir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RUNLEDGER_LOG_LEVEL": "WARNING"}
    env.update(child_env(settings, 2))
    proc = subprocess.Popen([sys.executable, "-c", _SUPERVISED, str(piddir)], env=env)
    _wait_for(lambda: len(list(piddir.iterdir())) >= 3)
    return proc


def _pids(piddir: Path) -> list[int]:
    return [int(p.name) for p in piddir.iterdir()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and PDEATHSIG")
def test_supervisor_restarts_and_stops_cleanly(kafka_settings: Settings, tmp_path: Path) -> None:
    proc = _start_supervisor(kafka_settings, tmp_path)
    try:
        first = _pids(tmp_path)
        os.kill(first[0], signal.SIGKILL)  # a crashed child comes back after ~0.5 s
        _wait_for(lambda: len(_pids(tmp_path)) == 4)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        _wait_for(lambda: not any(_alive(pid) for pid in _pids(tmp_path)), timeout=5)
    finally:
        proc.kill()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and PDEATHSIG")
def test_children_die_with_a_killed_supervisor(kafka_settings: Settings, tmp_path: Path) -> None:
    proc = _start_supervisor(kafka_settings, tmp_path)
    proc.kill()
    proc.wait()
    _wait_for(lambda: not any(_alive(pid) for pid in _pids(tmp_path)), timeout=5)


async def test_a_batch_goes_with_the_batch_of_its_broker_that_is_due(
    kafka_settings: Settings,
) -> None:
    """A message does not wait out its own linger when another partition on the same
    broker is sent: both go in one produce request (runledger/produce_drain.py)."""
    settings = _other_prefix(kafka_settings)
    await kafka.create_topics(settings)
    topic = settings.topic("events")
    producer = kafka.make_producer(settings, linger_ms=400)
    await producer.start()
    try:
        first = await producer.send(topic, b"a", partition=0)
        await asyncio.sleep(0.2)
        sent_second = time.monotonic()
        second = await producer.send(topic, b"b", partition=1)
        await asyncio.wait_for(asyncio.gather(first, second), 5)
        waited = time.monotonic() - sent_second
    finally:
        await producer.stop()
    assert waited < 0.35  # its own linger would have held it 0.4 s; the first went at ~0.2
