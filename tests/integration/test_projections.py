"""Projections against a real chDB: rows in, reads out, re-sent batches change nothing."""

from __future__ import annotations

from typing import Any

from projections import queries, schema, tracking, writer
from projections.clickhouse import ClickHouse
from projections.rows import project
from projections.writer import BatchWriter, write_projection
from streams.times import iso_ms
from tests.event_factory import T0, History, recon_execution, single_system_execution

TABLES = ("events", "executions", "step_records")


async def _raw_counts(ch: ClickHouse, db: str) -> dict[str, int]:
    """Physical row counts (no FINAL): a duplicate insert would show here."""
    return {t: (await ch.query(f"SELECT count() AS n FROM {db}.{t}"))[0]["n"] for t in TABLES}


async def _project_and_write(ch: ClickHouse, db: str, batch, prior=None):
    if prior is None:
        prior = await queries.load_states(ch, {e.execution_id for e in batch}, database=db)
    proj = project(batch, prior)
    await write_projection(ch, proj, database=db)
    return proj


async def _feed_two_batches(ch: ClickHouse, db: str) -> tuple[History, History, list, Any]:
    recon, erp = recon_execution(), single_system_execution()
    batch1 = [*recon.events[:8], *erp.events[:3]]
    batch2 = [*recon.events[8:], *erp.events[3:]]
    first = await _project_and_write(ch, db, batch1)
    second = await _project_and_write(ch, db, batch2)  # prior states read back from ClickHouse
    assert len(second.applied) == len(batch2)
    return recon, erp, batch2, first


async def test_two_batches_then_resends_project_exactly(clickhouse: ClickHouse, database: str):
    ch, db = clickhouse, database
    recon, erp, batch2, first = await _feed_two_batches(ch, db)
    counts = await _raw_counts(ch, db)
    # 17 + 5 events; 2 executions x 2 batches; step rows per batch: (3 + 1) then (4 + 1)
    assert counts == {"events": 22, "executions": 4, "step_records": 9}
    summary = await tracking.tracking_summary(ch, "exec_recon", database=db)
    records = await tracking.tracking_records(ch, "exec_recon", limit=100, database=db)

    # A crash after the inserts but before the offset commit: the same batch is folded
    # again from the same prior states, so the same rows carry the same tokens.
    again = await _project_and_write(ch, db, batch2, prior=dict(first.states))
    assert len(again.applied) == len(batch2)
    # ... also when it comes back in another order (different block hash, same token).
    await _project_and_write(ch, db, batch2[::-1], prior=dict(first.states))
    # A redelivery after the commit: the seqs are already projected, nothing is written.
    redelivered = await _project_and_write(ch, db, batch2)
    assert redelivered.empty and redelivered.duplicates == len(batch2)

    assert await _raw_counts(ch, db) == counts
    assert await tracking.tracking_summary(ch, "exec_recon", database=db) == summary
    assert await tracking.tracking_records(ch, "exec_recon", limit=100, database=db) == records


async def test_reads_match_the_figures_worked_out_by_hand(clickhouse: ClickHouse, database: str):
    ch, db = clickhouse, database
    recon, erp, _, _ = await _feed_two_batches(ch, db)

    events = await queries.execution_events(ch, "exec_recon", database=db)
    assert [e["seq"] for e in events] == list(range(1, 18))  # gapless, each once
    assert events == [e.model_dump(mode="json") for e in recon.events]
    tail = await queries.execution_events(ch, "exec_recon", after_seq=10, limit=3, database=db)
    assert [e["seq"] for e in tail] == [11, 12, 13]
    assert await queries.execution_events(ch, "exec_recon", tenant="other", database=db) == []

    detail = await queries.execution_detail(ch, "exec_recon", database=db)
    assert detail is not None
    assert (detail["status"], detail["progress"], detail["duration_ms"]) == ("failed", 1.0, 3200)
    assert detail["started_at"] == iso_ms(T0) and detail["finished_at"] == iso_ms(T0 + 3200)
    steps = {s["step_id"]: (s["status"], s["attempts"]) for s in detail["steps"]}
    assert steps == {
        "fetch_a": ("succeeded", 1), "fetch_b": ("succeeded", 1),
        "normalize": ("succeeded", 1), "match": ("succeeded", 2), "post": ("failed", 1),
        "notify": ("succeeded", 1),
    }  # fmt: skip
    running = await queries.execution_detail(ch, "exec_erp", database=db)
    assert running is not None and running["status"] == "running"
    assert running["progress"] == 0.5 and running["current_steps"] == ["reserve"]
    assert await queries.execution_detail(ch, "nope", database=db) is None
    assert await queries.execution_detail(ch, "exec_recon", "other", database=db) is None

    page = await tracking.tracking_records(ch, "exec_recon", limit=100, database=db)
    got = [
        (r["step_id"], r["attempt"], r["status"], r["started_at"], r["finished_at"],
         r["duration_ms"], r["system"], r["module"], r["error_type"])
        for r in page["items"]
    ]  # fmt: skip

    def rec(step, n, status, start, end, dur, system, module, err=None):
        return (step, n, status, iso_ms(T0 + start), iso_ms(T0 + end), dur, system, module, err)

    assert got == [
        rec("fetch_a", 1, "succeeded", 100, 400, 250, "ERP", "Orders"),  # reported duration
        rec("fetch_b", 1, "succeeded", 150, 500, 350, "CRM", "Customers"),  # end - start
        rec("normalize", 1, "succeeded", 600, 900, 300, "ERP", "Orders"),
        rec("match", 1, "failed", 1000, 1500, 500, "FIN", "Ledger", "Timeout"),
        rec("match", 2, "succeeded", 2000, 2600, 550, "FIN", "Ledger"),
        rec("post", 1, "failed", 2700, 3000, 300, "FIN", "Ledger", "Http400"),
        rec("notify", 1, "succeeded", 3050, 3200, 150, "CRM", "Mail"),  # no start report
    ]
    assert page["next_cursor"] is None
    assert page["items"][5]["error"] == "HTTP 400 from ledger"

    # cursor pages: same rows, same order, no OFFSET
    seen, cursor = [], None
    while True:
        p = await tracking.tracking_records(ch, "exec_recon", limit=3, cursor=cursor, database=db)
        seen.extend(p["items"])
        cursor = p["next_cursor"]
        if cursor is None:
            break
    assert seen == page["items"]
    erp_records = await tracking.tracking_records(ch, "exec_erp", database=db)
    assert [(r["step_id"], r["status"], r["finished_at"], r["duration_ms"])
            for r in erp_records["items"]] == [("load", "succeeded", iso_ms(T0 + 160), 100),
                                               ("reserve", "running", None, None)]  # fmt: skip
    failed_only = await tracking.tracking_records(ch, status="failed", database=db)
    assert [(r["step_id"], r["attempt"]) for r in failed_only["items"]] == [
        ("match", 1), ("post", 1),
    ]  # fmt: skip

    # Summary of one execution: 3 systems, 4 modules, 1 plan, touches >= 2 systems,
    # 3200 ms, 1 step whose last attempt failed (match failed once but then succeeded).
    one = await tracking.tracking_summary(ch, "exec_recon", database=db)
    assert {k: one[k] for k in ("systems", "modules", "plans", "cross_system_ratio",
                                "avg_duration_ms", "failed_steps", "runs", "executions")} == {
        "systems": 3, "modules": 4, "plans": 1, "cross_system_ratio": 1.0,
        "avg_duration_ms": 3200.0, "failed_steps": 1, "runs": 1, "executions": {"failed": 1},
    }  # fmt: skip
    # Both executions (window around T0): 1 of 2 crosses systems; Stock is a 5th module;
    # the running one has no duration yet.
    both = await tracking.tracking_summary(ch, since_ms=T0 - 1, until_ms=T0 + 60_000, database=db)
    assert {k: both[k] for k in ("systems", "modules", "plans", "cross_system_ratio",
                                 "avg_duration_ms", "failed_steps", "runs", "executions")} == {
        "systems": 3, "modules": 5, "plans": 1, "cross_system_ratio": 0.5,
        "avg_duration_ms": 3200.0, "failed_steps": 1, "runs": 1,
        "executions": {"failed": 1, "running": 1},
    }  # fmt: skip
    later = await tracking.tracking_summary(ch, now_ms=T0 + 3 * 86_400_000, database=db)
    assert later["executions"] == {} and later["avg_duration_ms"] is None

    logs = await queries.execution_logs(ch, "exec_recon", database=db)
    assert [(e["seq"], e["level"], e["kind"], e["step_id"]) for e in logs] == [
        (6, "info", "log", "fetch_b"), (10, "error", "error", "match"),
        (14, "error", "error", "post"), (15, "warn", "log", "post"),
    ]  # fmt: skip  (log events, and each failed attempt as an error line)
    warn = await queries.execution_logs(ch, "exec_recon", level="warn", database=db)
    assert [entry["message"] for entry in warn] == ["posting rejected"]
    assert [e["level"] for e in await queries.execution_logs(ch, "exec_erp", database=db)] == [
        "error"
    ]
    assert await queries.max_seqs(ch, ["exec_recon", "exec_erp", "nope"], database=db) == {
        "exec_recon": 17, "exec_erp": 5,
    }  # fmt: skip


async def test_a_retracted_attempt_disappears_from_the_records(
    clickhouse: ClickHouse, database: str
):
    ch, db = clickhouse, database
    h = History("exec_late")
    h.add("execution_started", T0, mode="tracked")
    h.add("step_skipped", T0 + 150, "s")
    h.add("step_succeeded", T0 + 300, "s")
    await _project_and_write(ch, db, h.events)
    before = await tracking.tracking_records(ch, "exec_late", database=db)
    assert [(r["attempt"], r["status"]) for r in before["items"]] == [(2, "succeeded")]
    h.add("step_started", T0 + 100, "s")  # a late start: one attempt, 100..300
    await _project_and_write(ch, db, h.events[3:])
    after = await tracking.tracking_records(ch, "exec_late", database=db)
    assert [(r["attempt"], r["status"], r["duration_ms"]) for r in after["items"]] == [
        (1, "succeeded", 200),
    ]  # fmt: skip


async def test_migrations_are_versioned_and_idempotent(clickhouse: ClickHouse, database: str):
    ch, db = clickhouse, database
    assert await ch.ping()
    assert await schema.migrate(ch, db) == []  # the fixture already applied everything
    assert await schema.schema_version(ch, db) == schema.MIGRATIONS[-1][0]
    tables = {r["name"] for r in await ch.query(
        "SELECT name FROM system.tables WHERE database = {db:String}", {"db": db}
    )}  # fmt: skip
    assert {"events", "executions", "step_records", "meta", "schema_migrations"} <= tables
    await schema.write_meta(ch, "partitions", "12", database=db)
    await schema.write_meta(ch, "partitions", "24", database=db)
    assert await schema.read_meta(ch, "partitions", database=db) == "24"
    assert await schema.read_meta(ch, "absent", database=db) is None
    assert (await ch.query(f"SELECT count() AS n FROM {db}.meta"))[0]["n"] == 2


async def test_a_refold_migration_fills_its_table_from_the_events(
    clickhouse: ClickHouse, database: str
):
    """A database made before executions_by_time and executions_by_status existed gets
    them filled on migrate, by one refold after the last migration that needs one."""
    ch, db = clickhouse, database
    await _project_and_write(ch, db, [*recon_execution().events, *single_system_execution().events])
    for table in ("executions_by_time", "executions_by_status"):
        await ch.command(f"DROP TABLE {db}.{table}")
    await ch.command(f"DELETE FROM {db}.schema_migrations WHERE version IN (4, 10)")
    assert await schema.migrate(ch, db) == [4, 10]
    rows = await ch.query(f"SELECT execution_id, status, steps_total FROM {db}.executions_by_time "
                          "FINAL ORDER BY execution_id")  # fmt: skip
    assert [(r["execution_id"], r["status"], r["steps_total"]) for r in rows] == [
        ("exec_erp", "running", 2), ("exec_recon", "failed", 6)]  # fmt: skip
    rows = await ch.query(f"SELECT execution_id, status, workflow_id FROM "
                          f"{db}.executions_by_status FINAL ORDER BY execution_id")  # fmt: skip
    assert [(r["execution_id"], r["status"], r["workflow_id"]) for r in rows] == [
        ("exec_erp", "running", "wf_erp"), ("exec_recon", "failed", "wf_recon")]  # fmt: skip


async def test_the_regranulating_migration_keeps_every_execution(
    clickhouse: ClickHouse, database: str
):
    """Migration 12 copies `executions` into 256-row granules under the same name: every
    row version is still there, and reads and writes go on against it."""
    ch, db = clickhouse, database
    recon = recon_execution()
    await _project_and_write(ch, db, [*recon.events[:8], *single_system_execution().events])
    before = await ch.query(f"SELECT * FROM {db}.executions ORDER BY execution_id, last_seq")
    await ch.command(f"DELETE FROM {db}.schema_migrations WHERE version = 12")
    assert await schema.migrate(ch, db) == [12]
    assert await ch.query(f"SELECT * FROM {db}.executions ORDER BY execution_id, last_seq") \
        == before
    ddl = (await ch.query(f"SHOW CREATE TABLE {db}.executions"))[0]["statement"]
    assert "index_granularity = 256" in ddl
    tables = {r["name"] for r in await ch.query(
        "SELECT name FROM system.tables WHERE database = {db:String}", {"db": db})}
    assert "executions_regranulated" not in tables
    await BatchWriter(ch, db).write(recon.events[8:])
    states = await queries.load_states(ch, {"exec_recon"}, database=db)
    assert states == project(recon.events, {}).states


async def test_a_crash_between_the_inserts_is_caught_up_from_the_archive(
    clickhouse: ClickHouse, database: str
):
    """Killed after `events` took a batch but before `executions` did, then restored from
    the archive (the worker goes on from the archived seq): the next batch starts past the
    projected seq. The writer folds the archived tail in, and no event is kept out."""
    ch, db = clickhouse, database
    recon = recon_execution()
    await _project_and_write(ch, db, recon.events[:5])
    lost = project(recon.events[5:10], await queries.load_states(ch, {"exec_recon"},
                                                                 database=db))  # fmt: skip
    await write_projection(ch, lost, database=db, tables={"events": "events"})

    writer = BatchWriter(ch, db)
    assert await writer.write(recon.events[10:]) == len(recon.events) - 5
    assert writer.stats.gaps == 0
    whole = project(recon.events, {})
    assert await queries.load_states(ch, {"exec_recon"}, database=db) == whole.states
    records = await tracking.tracking_records(ch, "exec_recon", limit=100, database=db)
    assert len(records["items"]) == len(whole.step_records)


async def test_the_writer_continues_an_execution_from_any_place_of_its_cache(
    clickhouse: ClickHouse, database: str, monkeypatch: Any
) -> None:
    """The writer's cache keeps its latest state as an object, older ones in their stored
    form, and drops the oldest: each continues the same, and only the dropped one is read
    back from ClickHouse."""
    ch, db = clickhouse, database
    monkeypatch.setattr(writer, "HOT_STATES", 1)
    loaded: list[set[str]] = []
    real_load = writer.load_states

    async def load_states(ch_: ClickHouse, ids: set[str], **kw: Any) -> Any:
        loaded.append(set(ids))
        return await real_load(ch_, ids, **kw)

    monkeypatch.setattr(writer, "load_states", load_states)
    runs = [recon_execution(f"exec_{n}") for n in ("dropped", "stored", "object")]
    w = writer.BatchWriter(ch, db, cache_size=2)
    await w.write([e for h in runs for e in h.events[:6]])
    assert (list(w._hot), list(w._warm)) == (["exec_object"], ["exec_stored"])
    loaded.clear()
    assert await w.write([e for h in runs for e in h.events[6:]]) == sum(
        len(h.events) - 6 for h in runs)
    assert loaded == [{"exec_dropped"}]
    whole = project([e for h in runs for e in h.events], {})
    assert await queries.load_states(ch, set(whole.states), database=db) == whole.states
