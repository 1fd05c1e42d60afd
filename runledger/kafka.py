"""Kafka helpers: topic names, topic creation/verification, client factories.

Also holds the one fix Runledger applies to aiokafka for the embedded Tansu broker:
``ListOffsets(LATEST)`` there answers "base offset + 1 of the newest batch" instead of
the log end, so ``end_offsets()`` is corrected with a small Fetch (see BROKER.md).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka import errors as kafka_errors
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.consumer import fetcher as _fetcher_mod
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.protocol.metadata import MetadataRequest

from runledger.settings import Settings

log = logging.getLogger(__name__)

TOPICS = ("commands", "step-events", "tasks", "events", "dead-letters")

_TOPIC_ALREADY_EXISTS = 36
_READ_COMMITTED = 1
_PROBE_MAX_BYTES = 1  # the broker still returns one batch (KIP-74); we only need the header
_PROBE_MAX_WAIT_MS = 50  # 0 makes Tansu answer with an empty response


class TopicPartitionMismatch(RuntimeError):
    """A topic exists with a partition count other than ``settings.partitions``."""

    def __init__(self, topic: str, expected: int, actual: int) -> None:
        super().__init__(
            f"topic {topic!r} has {actual} partitions, expected {expected} "
            "(RUNLEDGER_PARTITIONS); refusing to start"
        )
        self.topic = topic
        self.expected = expected
        self.actual = actual


class TopicCreationError(RuntimeError):
    """The broker refused to create a topic (other than 'already exists')."""


def group_id(settings: Settings, role: str) -> str:
    """A consumer group of this generation: ``runledger-worker``, ``runledger-worker-g3``."""
    suffix = f"-g{settings.generation}" if settings.generation else ""
    return f"{settings.topic_prefix}-{role}{suffix}"


def projector_group(settings: Settings) -> str:
    """A group per generation: a new member of a known group waits out a rebalance (~5 s
    on Tansu), a new group is joined at once."""
    return group_id(settings, "projector")


def worker_app_id(settings: Settings) -> str:
    return group_id(settings, "worker")


def logical_topic(name: str) -> str:
    """``runledger.g3.commands`` → ``commands`` (journal rows keep the full name)."""
    return name.rsplit(".", 1)[-1]


def changelog_topic(settings: Settings) -> str:
    """Changelog of the worker's Faust table ``executions``."""
    return f"{worker_app_id(settings)}-executions-changelog"


def topic_names(settings: Settings) -> list[str]:
    return [settings.topic(name) for name in TOPICS] + [changelog_topic(settings)]


async def create_topics(settings: Settings) -> None:
    """Create every Runledger topic (idempotent) and verify their partition counts."""
    names = topic_names(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
    await admin.start()
    try:
        new = [NewTopic(name, settings.partitions, 1) for name in names]
        response = await admin.create_topics(new)
        for topic, code, *rest in response.topic_errors:
            if code == 0:
                log.info("created topic %s (%d partitions)", topic, settings.partitions)
            elif code != _TOPIC_ALREADY_EXISTS:
                message = rest[0] if rest else None
                err = kafka_errors.for_code(code).__name__
                raise TopicCreationError(f"cannot create topic {topic!r}: {err} {message or ''}")
        counts = await _partition_counts(admin, names)
    finally:
        await admin.close()
    for name in names:
        actual = counts.get(name, 0)
        if actual != settings.partitions:
            raise TopicPartitionMismatch(name, settings.partitions, actual)


async def _partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    # Never let a metadata lookup auto-create a topic (aiokafka's default would).
    request = MetadataRequest(names, allow_auto_topic_creation=False)
    node_id = admin._client.get_random_node()
    response = await admin._client.send(node_id, request)
    counts: dict[str, int] = {}
    for topic in response.to_object()["topics"]:
        if topic["error_code"] == 0:
            counts[topic["topic"]] = len(topic["partitions"])
    return counts


# --------------------------------------------------------------------------- broker quirks


def patch_broker_quirks() -> None:
    """Apply every aiokafka fix the embedded broker needs (idempotent, harmless on Kafka)."""
    patch_end_offsets()
    patch_leave_group()
    patch_faust_fetch_wait()


FETCH_MAX_WAIT_MS = 100
_FETCH_MARK = "_runledger_fetch_wait_fix"


def patch_faust_fetch_wait() -> None:
    """Faust's worker consumer asks for ``fetch_max_wait_ms=1500`` (hard-coded). Tansu
    answers a consumer at the tail only after about a tenth of that, so every batch waited
    ~150-190 ms for its messages (measured); 100 ms gives ~3-5 ms (BROKER.md). On Kafka it
    only means an idle consumer polls more often."""
    from faust.transport.drivers import aiokafka as faust_aiokafka

    cls: Any = faust_aiokafka.AIOKafkaConsumerThread
    original = cls._create_worker_consumer
    if getattr(original, _FETCH_MARK, False):
        return

    @functools.wraps(original)
    def _create_worker_consumer(self: Any, *args: Any, **kwargs: Any) -> Any:
        consumer = original(self, *args, **kwargs)
        consumer._fetch_max_wait_ms = min(consumer._fetch_max_wait_ms, FETCH_MAX_WAIT_MS)
        return consumer

    setattr(_create_worker_consumer, _FETCH_MARK, True)
    cls._create_worker_consumer = _create_worker_consumer


_LEAVE_MARK = "_runledger_leave_group_fix"


def patch_leave_group() -> None:
    """Send LeaveGroup from generation 0 too (idempotent).

    Tansu numbers the first generation of a group 0, and aiokafka only leaves a group
    when ``generation > 0``: the first member then never leaves, and whoever joins next
    waits out the session timeout (~18 s measured). Kafka starts at 1, so nothing changes
    there.
    """
    from aiokafka.consumer import group_coordinator as gc
    from aiokafka.protocol.group import LeaveGroupRequest

    cls: Any = gc.GroupCoordinator
    if getattr(cls._maybe_leave_group, _LEAVE_MARK, False):
        return

    async def _maybe_leave_group(self: Any) -> None:
        if self.generation >= 0 and self.member_id and self._group_instance_id is None:
            try:
                await self._send_req(LeaveGroupRequest(self.group_id, self.member_id))
            except kafka_errors.KafkaError as err:
                log.warning("LeaveGroup request failed: %s", err)
        self.reset_generation()

    setattr(_maybe_leave_group, _LEAVE_MARK, True)
    cls._maybe_leave_group = _maybe_leave_group


# --------------------------------------------------------------------------- end offsets fix

_PATCH_MARK = "_runledger_end_offsets_fix"


def patch_end_offsets() -> None:
    """Correct ``Fetcher.end_offsets`` with a Fetch's high watermark (idempotent).

    On Apache Kafka the Fetch agrees with ListOffsets, so this changes nothing there.
    """
    fetcher_cls: Any = _fetcher_mod.Fetcher
    if getattr(fetcher_cls.end_offsets, _PATCH_MARK, False):
        return
    original = fetcher_cls.end_offsets

    @functools.wraps(original)  # the raw call stays reachable as __wrapped__
    async def end_offsets(self: Any, partitions: Any, timeout_ms: int) -> dict[TopicPartition, int]:
        offsets: dict[TopicPartition, int] = await original(self, partitions, timeout_ms)
        try:
            highwaters = await asyncio.wait_for(
                _fetch_highwaters(self, offsets), timeout=max(timeout_ms, 1000) / 1000
            )
        except (kafka_errors.KafkaError, TimeoutError) as exc:
            log.warning("end offset correction failed, using ListOffsets: %r", exc)
            return offsets
        return {tp: max(off, highwaters.get(tp, off)) for tp, off in offsets.items()}

    setattr(end_offsets, _PATCH_MARK, True)
    fetcher_cls.end_offsets = end_offsets


async def _fetch_highwaters(
    fetcher: Any, offsets: dict[TopicPartition, int]
) -> dict[TopicPartition, int]:
    client = fetcher._client
    by_node: dict[int, dict[str, list[tuple[int, int, int]]]] = collections.defaultdict(
        lambda: collections.defaultdict(list)
    )
    for tp, offset in offsets.items():
        leader = client.cluster.leader_for_partition(tp)
        if leader is None or leader == -1:
            continue
        fetch_at = offset if offset is not None and offset >= 0 else 0
        by_node[leader][tp.topic].append((tp.partition, fetch_at, _PROBE_MAX_BYTES))

    async def probe(node_id: int, topics: dict[str, list[tuple[int, int, int]]]) -> Any:
        request = FetchRequest(
            _PROBE_MAX_WAIT_MS,
            0,  # min_bytes: Kafka answers at once; Tansu waits max_wait_ms when at the end
            _PROBE_MAX_BYTES,
            fetcher._isolation_level,
            list(topics.items()),
        )
        return await client.send(node_id, request)

    responses = await asyncio.gather(*(probe(n, t) for n, t in by_node.items()))
    result: dict[TopicPartition, int] = {}
    for response in responses:
        for topic, partitions in response.topics:
            for partition, error_code, highwater, *rest in partitions:
                if error_code != 0:
                    continue
                end = highwater
                if (
                    fetcher._isolation_level == _READ_COMMITTED
                    and response.API_VERSION >= 4
                    and rest[0] >= 0
                ):
                    end = rest[0]  # last_stable_offset
                if end >= 0:
                    result[TopicPartition(topic, partition)] = end
    return result


# --------------------------------------------------------------------------- client factories


# JSON states and events shrink ~5x: the embedded broker holds compressed batches (its
# memory), and fetches move fewer bytes; measured faster than uncompressed both ways.
COMPRESSION = "zstd"


def make_producer(settings: Settings, **kw: Any) -> AIOKafkaProducer:
    """A producer with the settings that work on Tansu and Kafka (BROKER.md)."""
    patch_broker_quirks()
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap,
        "linger_ms": 5,
        "max_batch_size": 262_144,
        "acks": "all",
        "enable_idempotence": False,
        "compression_type": COMPRESSION,
    }
    options.update(kw)
    return AIOKafkaProducer(**options)


def make_consumer(settings: Settings, *topics: str, **kw: Any) -> AIOKafkaConsumer:
    """A consumer with the settings that work on Tansu and Kafka (BROKER.md)."""
    patch_broker_quirks()
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap,
        "fetch_max_wait_ms": 100,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
    }
    options.update(kw)
    return AIOKafkaConsumer(*topics, **options)


class Fetcher:
    """``getmany()`` for a consume loop: a failed fetch is logged and waited out (0.1 s,
    doubling up to 5 s) and reads as an empty batch, so the loop goes on."""

    def __init__(self, consumer: AIOKafkaConsumer, who: str) -> None:
        self.consumer, self.who, self.backoff = consumer, who, 0.1

    async def getmany(self, **kw: Any) -> dict[TopicPartition, list[Any]]:
        try:
            batch = await self.consumer.getmany(**kw)
        except kafka_errors.KafkaError as exc:
            log.warning("%s: fetch failed: %r", self.who, exc)
            await asyncio.sleep(self.backoff)
            self.backoff = min(self.backoff * 2, 5.0)
            return {}
        self.backoff = 0.1
        return batch
