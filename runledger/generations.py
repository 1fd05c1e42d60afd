"""Topic generations: how the embedded broker stays small however long it runs.

The embedded broker never deletes a record (BROKER.md), so topics carry a generation
number (``runledger.g3.events``) and the API process moves everything to the next one
when the current one holds ``RUNLEDGER_GENERATION_MAX_RECORDS`` (api/generation.py).
This module holds what every process needs for that: which generation is current (the
newest one whose topics exist: the broker itself is the record, so a fresh broker starts
at 1), how big it is, whether a group is gone or caught up, and a watch that tells a
worker or an executor that a newer generation exists, so it stops and comes back there.
With Apache Kafka generations are off by default (``RUNLEDGER_GENERATIONS``): names have
no number and retention/compaction do the job (deploy/README.md).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from runledger.kafka import (
    make_consumer,
    patch_broker_quirks,
    projector_group,
    topic_names,
    worker_app_id,
)
from runledger.settings import Settings

log = logging.getLogger("runledger.generations")


def _admin(settings: Settings) -> AIOKafkaAdminClient:
    patch_broker_quirks()
    return AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap, request_timeout_ms=10_000)


async def existing_generations(settings: Settings) -> list[int]:
    """The generations whose commands topic exists, oldest first."""
    pattern = re.compile(rf"^{re.escape(settings.topic_prefix)}\.g(\d+)\.commands$")
    admin = _admin(settings)
    await admin.start()
    try:
        names = await admin.list_topics()
    finally:
        await admin.close()
    return sorted(int(m.group(1)) for m in map(pattern.match, names) if m)


async def resolve(settings: Settings) -> Settings:
    """``settings`` at the current generation (0 when generations are off)."""
    if not settings.uses_generations:
        return settings.at_generation(0)
    found = await existing_generations(settings)
    return settings.at_generation(max(found, default=1))


def resolve_blocking(settings: Settings) -> Settings:
    """``resolve`` from synchronous code, leaving this thread's event loop alone (Faust
    sets up its own afterwards)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, resolve(settings)).result()


async def wait_for_newer(settings: Settings, interval: float = 1.0) -> int:
    """Return the first generation newer than ``settings.generation`` once one exists."""
    while True:
        try:
            newer = [g for g in await existing_generations(settings) if g > settings.generation]
        except Exception as exc:  # broker restarting: the supervisor restarts us anyway
            log.debug("generation check failed: %r", exc)
            newer = []
        if newer:
            return min(newer)
        await asyncio.sleep(interval)


async def end_offsets(settings: Settings, topics: list[str]) -> dict[TopicPartition, int]:
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics
               for p in (consumer.partitions_for_topic(t) or ())]  # fmt: skip
        return await consumer.end_offsets(tps) if tps else {}
    finally:
        await consumer.stop()


async def records_in(settings: Settings) -> int:
    """Records stored in this generation's topics (the broker deletes none, so the sum
    of the end offsets)."""
    return sum((await end_offsets(settings, topic_names(settings))).values())


def process_rss_mb(pid: int | str = "self", field: str = "VmRSS") -> float | None:
    """A process's memory from /proc (VmRSS now, VmHWM its peak) in MB, or None."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return None


def broker_rss_mb(settings: Settings) -> float | None:
    """The embedded broker's resident memory (from the pid the supervisor wrote), or None
    when there is no embedded broker to look at."""
    try:
        pid = int(settings.broker_pid_file.read_text())
    except (OSError, ValueError):
        return None
    return process_rss_mb(pid)


async def lag(settings: Settings, group: str, topics: list[str]) -> int:
    """Records of ``topics`` that ``group`` has not committed yet."""
    ends = await end_offsets(settings, topics)
    consumer = make_consumer(settings, group_id=group)
    await consumer.start()
    try:
        behind = 0
        for tp, end in ends.items():
            behind += max(end - (await consumer.committed(tp) or 0), 0)
        return behind
    finally:
        await consumer.stop()


async def committed_past(settings: Settings, group: str, ends: dict[TopicPartition, int]
                         ) -> bool:  # fmt: skip
    """True when ``group`` has committed each partition up to the offset in ``ends``."""
    consumer = make_consumer(settings, group_id=group)
    await consumer.start()
    try:
        for tp, end in ends.items():
            if end and (await consumer.committed(tp) or 0) < end:
                return False
        return True
    finally:
        await consumer.stop()


async def members(settings: Settings, group: str) -> int:
    """Members of consumer group ``group`` (0 when the broker does not know it)."""
    admin = _admin(settings)
    await admin.start()
    try:
        described = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    count = 0
    for response in described:
        for entry in response.groups:
            count += len(entry[5]) if len(entry) > 5 and entry[5] else 0
    return count


def _generation_of(settings: Settings, topic: str) -> int | None:
    """The generation a topic belongs to (its own topics, Faust's changelog and leader
    topics), or None."""
    prefix = re.escape(settings.topic_prefix)
    m = re.match(rf"^(?:{prefix}\.g(\d+)\.|{prefix}-worker-g(\d+)-)", topic)
    return int(m.group(1) or m.group(2)) if m else None


async def delete_older(settings: Settings) -> list[str]:
    """Delete every topic of a generation older than ``settings.generation`` (DeleteTopics
    frees the broker's memory). A process that is still stopping may have created one of
    them again by asking for it (Tansu creates topics on demand): run it now and then."""
    admin = _admin(settings)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics()
                 if (g := _generation_of(settings, t)) is not None and g < settings.generation]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()
    return names


async def stop_when_newer(settings: Settings, stop: Callable[[], object], who: str) -> None:
    """Call ``stop`` once a newer generation exists (the process then restarts there)."""
    newer = await wait_for_newer(settings)
    log.info("%s: generation %d exists; stopping here (generation %d) to restart there",
             who, newer, settings.generation)  # fmt: skip
    stop()


async def gone(settings: Settings, group: str) -> bool:
    return await members(settings, group) == 0


async def workers_gone(settings: Settings) -> bool:
    return await gone(settings, worker_app_id(settings))


async def projected(settings: Settings) -> bool:
    """Every event and dead letter of this generation is in ClickHouse (the projector
    committed them)."""
    topics = [settings.topic("events"), settings.topic("dead-letters")]
    return await committed_past(settings, projector_group(settings),
                                await end_offsets(settings, topics))  # fmt: skip


async def until(check: Callable[[], Awaitable[bool]], what: str, every: float = 0.2) -> None:
    """Poll ``check`` until it is true, logging every 15 s while waiting for ``what``."""
    started = last_log = time.monotonic()
    while not await check():
        now = time.monotonic()
        if now - last_log >= 15:
            log.warning("still waiting for %s (%.0fs)", what, now - started)
            last_log = now
        await asyncio.sleep(every)
