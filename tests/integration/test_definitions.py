"""Saved definitions against real chDB: a saved workflow or registered step type is a row
once its request is answered, and a change the journal holds without its row (a crash
between the two, or a database from before migration 13) gets it."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import pytest

from projections import step_types, workflows
from projections.clickhouse import ClickHouse
from projections.definition_tables import V6_WORKFLOWS
from projections.journal import Entry, JournalWriter, insert_entries
from projections.schema import migrate

pytestmark = pytest.mark.asyncio


async def _nowhere(records: Sequence[tuple[str, str, bytes]]) -> None:
    return None


def _workflow(version: int, name: str = "Orders", action: str = "workflow.save") -> Entry:
    doc = {"id": "wf1", "version": version, "name": name, "tags": ["erp"], "is_active": True,
           "deleted": action == "workflow.delete"}  # fmt: skip
    return Entry(action=action, execution_id="wf1", ids=(), topic="",
                 payload=orjson.dumps(doc), received_at=1_700_000_000_000 + version,
                 actor="alice")  # fmt: skip


def _step_type(url: str, action: str = "step_type.register") -> Entry:
    return Entry(action=action, execution_id="erp.sync", ids=(), topic="",
                 payload=orjson.dumps({"name": "erp.sync", "url": url}),
                 received_at=1_700_000_000_000)  # fmt: skip


def _report(i: int) -> Entry:
    return Entry(action="report", execution_id=f"e{i}", ids=(f"r{i}",), topic="t",
                 payload=b"{}", received_at=1_700_000_000_000)  # fmt: skip


async def _journal_directly(ch: ClickHouse, db: str, entries: list[Entry], first: int) -> None:
    """Journal rows as a writer that crashed before writing their definitions' rows."""
    await insert_entries(ch, db, entries, range(first, first + len(entries)))


async def _urls(ch: ClickHouse, db: str) -> list[str]:
    return [d["url"] for d in await step_types.registered(ch, "default", database=db)]


async def test_a_change_is_a_row_once_its_request_is_answered(
    clickhouse: ClickHouse, database: str
):
    writer = JournalWriter(clickhouse, database, _nowhere)
    await writer.start()
    try:
        await writer.append([_report(1), _workflow(1), _report(2)])
        assert (await workflows.latest(clickhouse, "default", "wf1", database=database)
                or {}).get("name") == "Orders"  # fmt: skip
        await writer.append([_step_type("http://127.0.0.1:9/a")])
        assert await _urls(clickhouse, database) == ["http://127.0.0.1:9/a"]
        await writer.append([_workflow(2, "Orders v2"), _step_type("", "step_type.delete")])
    finally:
        await writer.stop()
    saved = await workflows.versions(clickhouse, "default", "wf1", database=database)
    assert [(v["version"], v["name"], v["saved_by"]) for v in saved] == [
        (1, "Orders", "alice"), (2, "Orders v2", "alice")]
    assert await _urls(clickhouse, database) == []
    # Nothing runs on every journal insert any more: no view reads the journal.
    views = await clickhouse.query(
        "SELECT dependencies_table FROM system.tables WHERE database = {db:String} "
        "AND name = 'journal'", {"db": database})
    assert views == [{"dependencies_table": []}]


async def test_a_change_journaled_without_its_row_gets_it_when_a_writer_starts(
    clickhouse: ClickHouse, database: str
):
    await clickhouse.command(f"SYSTEM STOP MERGES {database}.step_types")
    await _journal_directly(clickhouse, database, [
        _workflow(1), _step_type("http://127.0.0.1:9/old"), _workflow(2, "Orders v2"),
        _step_type("http://127.0.0.1:9/new")], first=100)  # fmt: skip
    assert await workflows.latest(clickhouse, "default", "wf1", database=database) is None

    counts = []
    for _ in range(2):  # a second start finds nothing missing
        writer = JournalWriter(clickhouse, database, _nowhere)
        await writer.start()
        await writer.stop()
        doc = await workflows.latest(clickhouse, "default", "wf1", database=database)
        assert doc is not None and doc["version"] == 2
        assert await _urls(clickhouse, database) == ["http://127.0.0.1:9/new"]
        rows = await clickhouse.query(f"SELECT count() AS n FROM {database}.step_types")
        counts.append(rows[0]["n"])
    # One insert keeps the newest registration of the name; the older one is not written
    # again after it (the newer one replaces it).
    assert counts == [1, 1]


async def test_a_commit_whose_rows_failed_is_repaired_by_the_next(
    clickhouse: ClickHouse, database: str
):
    writer = JournalWriter(clickhouse, database, _nowhere)
    await writer.start()
    try:
        await clickhouse.command(f"DROP TABLE {database}.workflows")
        with pytest.raises(Exception, match="(?i)workflows"):
            await writer.append([_workflow(1)])  # journaled; its row could not be written
        await clickhouse.command(V6_WORKFLOWS[0].format(db=database))
        await writer.append([_report(1)])
    finally:
        await writer.stop()
    doc = await workflows.latest(clickhouse, "default", "wf1", database=database)
    assert doc is not None and doc["name"] == "Orders"


async def test_the_migration_drops_the_views_and_writes_what_they_missed(
    clickhouse: ClickHouse, monkeypatch: pytest.MonkeyPatch
):
    import projections.schema as schema

    db = "t_definitions_upgrade"
    await clickhouse.command(f"DROP DATABASE IF EXISTS {db}")
    try:
        with monkeypatch.context() as m:  # a database as version 12 left it
            m.setattr(schema, "MIGRATIONS", [v for v in schema.MIGRATIONS if v[0] <= 12])
            await migrate(clickhouse, db)
        await _journal_directly(clickhouse, db, [_workflow(1)], first=1)  # the view's row
        await clickhouse.command(f"DROP VIEW {db}.workflows_mv")
        await _journal_directly(clickhouse, db, [_workflow(2, "Orders v2")], first=2)

        assert await migrate(clickhouse, db) == [13]
        saved = await workflows.versions(clickhouse, "default", "wf1", database=db)
        assert [v["version"] for v in saved] == [1, 2]
        tables = await clickhouse.query(
            "SELECT name FROM system.tables WHERE database = {db:String} AND "
            "engine = 'MaterializedView'", {"db": db})
        assert tables == []
    finally:
        await clickhouse.command(f"DROP DATABASE IF EXISTS {db}")
