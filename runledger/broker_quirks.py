"""The fixes aiokafka (and Faust on top of it) needs for the embedded Tansu broker.

All are idempotent and harmless on Apache Kafka (BROKER.md says what each one is for):
``ListOffsets(LATEST)`` answers "base offset + 1 of the newest batch" instead of the log
end, so ``end_offsets()`` is corrected with a small Fetch; the first group generation is
0, so LeaveGroup is sent from it too; Faust's fixed 1.5 s fetch wait is cut to 100 ms.
One more, for any broker: producers send a node's batches together
(runledger/produce_drain.py).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
from typing import Any

from aiokafka import TopicPartition
from aiokafka import errors as kafka_errors
from aiokafka.consumer import fetcher as _fetcher_mod
from aiokafka.protocol.fetch import FetchRequest

from runledger.produce_drain import patch_producer_drain

log = logging.getLogger(__name__)

_READ_COMMITTED = 1
_PROBE_MAX_BYTES = 1  # the broker still returns one batch (KIP-74); we only need the header
_PROBE_MAX_WAIT_MS = 50  # 0 makes Tansu answer with an empty response


def patch_broker_quirks() -> None:
    """Apply every aiokafka fix the embedded broker needs (idempotent, harmless on Kafka)."""
    patch_end_offsets()
    patch_leave_group()
    patch_faust_fetch_wait()
    patch_producer_drain()


# How long a consumer at the tail lets the broker hold a fetch. Tansu answers a parked
# fetch only late within it: one produce -> consume hop at idle took p50 32 / p99 57 ms at
# 100, 19 / 34 ms at 50, 8.6 / 11.9 ms at 20 (stop 34, 5 ms linger). 20 took the
# orchestrated step-to-step overhead at 25 steps/s from p99 79 to 49 ms, but an idle
# product used 65 % of a core instead of 24 % (the broker 42 %), and under load it ran
# 333-353 steps/s against 371: so 100 stays.
FETCH_MAX_WAIT_MS = 100
_FETCH_MARK = "_runledger_fetch_wait_fix"


def patch_faust_fetch_wait() -> None:
    """Faust's worker consumer asks for ``fetch_max_wait_ms=1500`` (hard-coded). Tansu
    answers a consumer at the tail late within that wait, so every batch waited ~150-190
    ms for its messages (measured); see ``FETCH_MAX_WAIT_MS``. On Kafka it only means an
    idle consumer polls more often."""
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
