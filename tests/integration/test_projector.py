"""The projector against the embedded broker and chDB: batch, insert, then commit."""

from __future__ import annotations

import asyncio
import time
import uuid
import weakref
from collections.abc import Callable

from aiokafka import AIOKafkaProducer

from projections import queries
from projections.clickhouse import ClickHouse
from projections.projector import Projector
from runledger.kafka import create_topics, make_producer
from runledger.settings import Settings
from streams.contracts import Event, EventsMessage
from tests.event_factory import recon_execution, single_system_execution


async def _until(check: Callable[[], object], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not await _value(check):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _value(check: Callable[[], object]) -> object:
    value = check()
    return await value if asyncio.iscoroutine(value) else value


async def _send(producer: AIOKafkaProducer, topic: str, *chunks: list[Event] | bytes) -> None:
    for chunk in chunks:
        if isinstance(chunk, bytes):
            await producer.send_and_wait(topic, chunk, key=b"garbage")
            continue
        body = EventsMessage(events=tuple(chunk)).model_dump_json().encode()
        await producer.send_and_wait(topic, body, key=chunk[0].execution_id.encode())


async def test_projector_flushes_on_stop_and_ignores_redeliveries(
    kafka_settings: Settings, clickhouse: ClickHouse, database: str
):
    settings = kafka_settings.model_copy(
        update={"topic_prefix": f"p{uuid.uuid4().hex[:8]}", "projector_max_delay": 60.0}
    )
    await create_topics(settings)
    topic = settings.topic("events")
    recon, erp = recon_execution(), single_system_execution()
    producer = make_producer(settings)
    await producer.start()
    try:
        await _send(producer, topic, recon.events[:8], erp.events[:3], b"{not json",
                    recon.events[8:], erp.events[3:])  # fmt: skip

        # A long delay: everything waits in the buffer, visible to the WebSocket tail.
        projector = Projector(settings, clickhouse, database=database)
        await projector.start()
        await _until(lambda: projector.buffered_events == 22)
        assert [e.seq for e in projector.pending_events("exec_recon", 10)] == list(range(11, 18))
        assert await queries.max_seqs(clickhouse, ["exec_recon"], database=database) == {}
        await projector.stop()  # flushes and commits
        assert projector.stats.undecodable == 1 and projector.stats.events == 22
        assert projector.last_flush_at is not None and projector.pending_events("exec_recon") == []
        seqs = await queries.max_seqs(clickhouse, ["exec_recon", "exec_erp"], database=database)
        assert seqs == {"exec_recon": 17, "exec_erp": 5}

        # A re-sent message (at-least-once upstream) is dropped by seq; offsets were
        # committed, so a new projector in the group starts after the first five.
        fast = settings.model_copy(update={"projector_max_delay": 0.05})
        await _send(producer, topic, recon.events[5:12])
        again = Projector(fast, clickhouse, database=database)
        await again.start()
        await _until(lambda: again.stats.duplicates == 7)
        await _until(lambda: again.lag()["total"] == 0 and again.lag()["partitions"])
        await again.stop()
        assert again.stats.events == 0 and again.stats.undecodable == 0
        rows = await clickhouse.query(f"SELECT count() AS n FROM {database}.events")
        assert rows[0]["n"] == 22
        detail = await queries.execution_detail(clickhouse, "exec_recon", database=database)
        assert detail is not None and detail["status"] == "failed"
    finally:
        await producer.stop()


async def test_a_stopped_projector_is_freed_without_waiting_for_the_cycle_collector(
    kafka_settings: Settings, clickhouse: ClickHouse, database: str
):
    """A generation switch replaces the projector: the old one, with its cache of states,
    must go when dropped, not at a full collection (rare under runledger/cli.py's GC
    thresholds: ten switches once left ~2.4 M objects behind)."""
    settings = kafka_settings.model_copy(
        update={"topic_prefix": f"p{uuid.uuid4().hex[:8]}", "projector_max_delay": 0.05}
    )
    await create_topics(settings)
    erp = single_system_execution()
    producer = make_producer(settings)
    await producer.start()
    try:
        await _send(producer, settings.topic("events"), erp.events)
    finally:
        await producer.stop()
    projector = Projector(settings, clickhouse, database=database)
    await projector.start()
    stats = projector.stats  # a lambda over ``projector`` would hold it
    await _until(lambda: stats.events == len(erp.events))
    await projector.stop()
    gone = weakref.ref(projector)
    del projector
    assert gone() is None
    seqs = await queries.max_seqs(clickhouse, [erp.execution_id], database=database)
    assert seqs == {erp.execution_id: len(erp.events)}
