"""The journal writer against real chDB: group commit, order, and all-or-nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from projections.clickhouse import ClickHouse
from projections.journal import Entry, JournalWriter, audit_log


def _entry(i: int, eid: str = "e1", actor: str = "alice") -> Entry:
    return Entry(action="report", execution_id=eid, ids=(f"r{i}",), topic="t",
                 payload=f'{{"n": {i}}}'.encode(), received_at=1_700_000_000_000 + i,
                 actor=actor)  # fmt: skip


async def test_concurrent_requests_are_group_committed_in_order(
    clickhouse: ClickHouse, database: str
):
    published: list[list[tuple[str, str, bytes]]] = []

    async def publish(records: Sequence[tuple[str, str, bytes]]) -> None:
        published.append(list(records))

    writer = JournalWriter(clickhouse, database, publish, window=0.05)
    await writer.start()
    try:
        results = await asyncio.gather(*(writer.append([_entry(i)]) for i in range(50)))
    finally:
        await writer.stop()
    positions = [p for r in results for p in r]
    assert positions == sorted(positions) and len(set(positions)) == 50
    assert writer.commits < 50  # concurrent requests shared commits
    appended = [rec for batch in published for rec in batch]
    assert [rec[2] for rec in appended] == [f'{{"n": {i}}}'.encode() for i in range(50)]
    rows = await audit_log(clickhouse, database, limit=1000)
    assert [r["ids"] for r in rows] == [[f"r{i}"] for i in range(50)]
    assert [r["journal_pos"] for r in rows] == positions


async def test_a_failed_publish_fails_every_waiting_request(clickhouse: ClickHouse, database: str):
    async def broken(records: Sequence[tuple[str, str, bytes]]) -> None:
        raise ConnectionError("broker gone")

    writer = JournalWriter(clickhouse, database, broken, window=0.05)
    await writer.start()
    try:
        results = await asyncio.gather(*(writer.append([_entry(i)]) for i in range(5)),
                                       return_exceptions=True)
    finally:
        await writer.stop()
    assert all(isinstance(r, ConnectionError) for r in results)


async def test_audit_filters(clickhouse: ClickHouse, database: str):
    async def publish(records: Sequence[tuple[str, str, bytes]]) -> None:
        return None

    writer = JournalWriter(clickhouse, database, publish)
    await writer.start()
    try:
        await writer.append([_entry(1, "e1", "alice"), _entry(2, "e2", "bob")])
    finally:
        await writer.stop()
    bob = await audit_log(clickhouse, database, actor="bob")
    assert [(r["actor"], r["execution_id"]) for r in bob] == [("bob", "e2")]
    assert await audit_log(clickhouse, database, execution_id="nope") == []
    window = await audit_log(clickhouse, database, since_ms=1_700_000_000_002)
    assert [r["ids"] for r in window] == [["r2"]]




async def test_paused_writer_holds_new_requests_until_resumed(
    clickhouse: ClickHouse, database: str
):
    """A generation switch runs inside paused(): what was under way is published first,
    nothing new is journaled or published until it ends, then the waiting requests go."""
    published: list[bytes] = []
    release = asyncio.Event()

    async def publish(records: Sequence[tuple[str, str, bytes]]) -> None:
        await release.wait()
        published.extend(rec[2] for rec in records)

    writer = JournalWriter(clickhouse, database, publish, window=0.01)
    await writer.start()
    try:
        under_way = asyncio.create_task(writer.append([_entry(1)]))
        await asyncio.sleep(0.2)
        pausing = asyncio.create_task(_pause_then(writer, published))
        await asyncio.sleep(0.2)
        assert not pausing.done()  # waits for the request under way to be published
        release.set()
        seen_inside = await pausing
        assert seen_inside == [b'{"n": 1}']  # published before the pause took hold
        await under_way
        assert published == [b'{"n": 1}', b'{"n": 2}']  # the held request went after
    finally:
        await writer.stop()


async def _pause_then(writer: JournalWriter, published: list[bytes]) -> list[bytes]:
    async with writer.paused():
        held = asyncio.create_task(writer.append([_entry(2)]))
        await asyncio.sleep(0.3)
        inside = list(published)
        assert not held.done()
    await held
    return inside
