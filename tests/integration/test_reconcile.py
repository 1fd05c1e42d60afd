"""Accepted but never applied: found in the journal and appended again (real chDB + broker)."""

from __future__ import annotations

import time
import uuid

import orjson
from aiokafka import TopicPartition

from projections.clickhouse import ClickHouse
from projections.journal import COLUMNS
from projections.rows import project
from projections.writer import write_projection
from runledger.kafka import create_topics, make_consumer, make_producer
from runledger.restore import reappend, uncited_entries
from runledger.settings import Settings
from streams.contracts import Report, ReportBatch, StartExecution
from streams.machine import MachineConfig, decide


async def test_uncited_entries_are_found_and_appended_again_after_the_archived_state(
    clickhouse: ClickHouse, database: str, kafka_settings: Settings
):
    s = kafka_settings.model_copy(update={"topic_prefix": f"r{uuid.uuid4().hex[:8]}"})
    await create_topics(s)
    ch, eid = clickhouse, f"rec_{uuid.uuid4().hex[:8]}"
    now = int(time.time() * 1000)
    start = StartExecution(execution_id=eid, received_at=now - 60_000, command_id="c1")
    applied = decide(None, start, MachineConfig())
    await write_projection(ch, project(list(applied.events), {}), database=database)
    lost = ReportBatch(execution_id=eid, received_at=now - 59_000, reports=(
        Report(report_id="lost-1", event_type="log", timestamp=now - 59_000),))
    topic = s.topic("step-events")
    rows = [[1, now - 60_000, "default", "a", "start", eid, ["c1"], s.topic("commands"),
             start.model_dump_json()],
            [2, now - 59_000, "default", "a", "report", eid, ["lost-1"], topic,
             lost.model_dump_json()],
            [3, now, "default", "a", "report", eid, ["too-new"], topic, "{}"]]
    await ch.insert("journal", [list(c) for c in zip(*rows, strict=True)], COLUMNS,
                    database=database)

    entries = await uncited_entries(ch, database, after_pos=0, before_ms=now - 30_000)
    assert [int(e["journal_pos"]) for e in entries] == [2]  # cited and too-new ones are not

    producer = make_producer(s)
    await producer.start()
    await reappend(s, ch, producer, entries, database=database)
    await producer.stop()
    consumer = make_consumer(s, group_id=None)
    await consumer.start()
    tps = [TopicPartition(topic, p) for p in range(s.partitions)]
    consumer.assign(tps)
    await consumer.seek_to_beginning()
    got: list[dict] = []
    for _ in range(20):
        for records in (await consumer.getmany(timeout_ms=300)).values():
            got += [orjson.loads(r.value) for r in records]
        if len(got) >= 2:
            break
    await consumer.stop()
    assert [m["kind"] for m in got] == ["rehydrate", "report"]
    assert got[0]["state"]["seq"] == 1 and got[1]["reports"][0]["report_id"] == "lost-1"
