"""Search, tracking filters, statistics and realtime figures over a known dataset.

Every expected figure is worked out by hand from the dataset below (durations in ms,
percentiles by linear interpolation between ranks, as ``quantileExactInclusive``).

  wf_s, e1 (T0):      A ERP/Orders 20..100 ok (80; scheduled at 0)
                      B CRM/Customers 150..400 ok (250; scheduled at 100)  -> succeeded, 500
  wf_s, e2 (T0+1000): A 0..200 ok (200; scheduled at 0), B 200..1000 failed Timeout (800),
                      B 1100..1700 ok (600)                                -> succeeded, 1800
  wf_s, e3 (T0+3000): A 0..300 ok (300), B 300..700 failed Timeout (400)   -> failed, 800
  wf_s, e4 (T0+5000): A 0..150 failed Http500 (150)                        -> failed, 200
  wf_s, e5 (T0+6000): A started, still running
  wf_o, e6 (T0+7000): C FIN/Ledger 0..100 ok (100)                         -> succeeded, 100
"""

from __future__ import annotations

import pytest

from projections import realtime, schema, search, stats, tracking
from projections.clickhouse import ClickHouse
from projections.filters import Filters
from projections.writer import BatchWriter
from streams.times import iso_ms
from tests.event_factory import T0, History

WINDOW = {"since_ms": T0 - 1, "until_ms": T0 + 60_000}
ERP, CRM, FIN = ("ERP", "Orders"), ("CRM", "Customers"), ("FIN", "Ledger")


def pct(values: list[float], q: float) -> float:
    """The q-quantile with linear interpolation between the closest ranks."""
    xs = sorted(values)
    rank = q * (len(xs) - 1)
    lo = int(rank)
    hi = min(lo + 1, len(xs) - 1)
    return round(xs[lo] + (rank - lo) * (xs[hi] - xs[lo]), 2)


def _step(h: History, t: int, step: str, place: tuple[str, str], end: int | None,
          outcome: str = "step_succeeded", scheduled: int | None = None, **data) -> None:
    system, module = place
    if scheduled is not None:
        h.add("step_scheduled", t + scheduled, step, system=system, module=module, attempt=1)
        data_start = {"attempt": 1}
    else:
        data_start = {}
    h.add("step_started", t, step, system=system, module=module, **data_start)
    if end is not None:
        h.add(outcome, t + end, step, system=system, module=module, **data)


def dataset() -> list[History]:
    out = []

    def execution(eid: str, t: int, wf: str = "wf_s") -> History:
        h = History(eid, workflow_id=wf)
        h.add("execution_started", t, mode="tracked", workflow_id=wf)
        out.append(h)
        return h

    t = T0
    e1 = execution("e1", t)
    _step(e1, t + 20, "A", ERP, 80, scheduled=-20)
    _step(e1, t + 150, "B", CRM, 250, scheduled=-50)
    e1.add("execution_completed", t + 500, status="succeeded")
    t = T0 + 1000
    e2 = execution("e2", t)
    _step(e2, t, "A", ERP, 200, scheduled=0)
    _step(e2, t + 200, "B", CRM, 800, "step_failed", error="crm timed out",
          error_type="Timeout", retryable=True)  # fmt: skip
    _step(e2, t + 1100, "B", CRM, 600)
    e2.add("execution_completed", t + 1800, status="succeeded")
    t = T0 + 3000
    e3 = execution("e3", t)
    _step(e3, t, "A", ERP, 300)
    _step(e3, t + 300, "B", CRM, 400, "step_failed", error="crm timed out again",
          error_type="Timeout", retryable=False)  # fmt: skip
    e3.add("execution_completed", t + 800, status="failed")
    t = T0 + 5000
    e4 = execution("e4", t)
    _step(e4, t, "A", ERP, 150, "step_failed", error="erp returned 500", error_type="Http500")
    e4.add("execution_completed", t + 200, status="failed")
    e5 = execution("e5", T0 + 6000)
    _step(e5, T0 + 6000, "A", ERP, None)
    t = T0 + 7000
    e6 = execution("e6", t, "wf_o")
    _step(e6, t, "C", FIN, 100)
    e6.add("execution_completed", t + 100, status="succeeded")
    return out


@pytest.fixture
async def db(clickhouse: ClickHouse, database: str) -> str:
    writer = BatchWriter(clickhouse, database)  # the projector's own write path
    await writer.write([e for h in dataset() for e in h.events])
    return database


def ids(page: dict) -> list[str]:
    return [item["execution_id"] for item in page["items"]]


async def test_search_order_paging_filters_and_step_counts(clickhouse: ClickHouse, db: str):
    ch = clickhouse

    async def find(**kw) -> list[str]:
        return ids(await search.search_executions(ch, Filters(**kw), database=db))

    everything = await search.search_executions(ch, Filters(), database=db)
    assert ids(everything) == ["e6", "e5", "e4", "e3", "e2", "e1"]  # newest first
    assert everything["next_cursor"] is None
    seen, cursor, pages = [], None, 0
    while True:
        page = await search.search_executions(ch, Filters(), 2, cursor, database=db)
        seen += page["items"]
        pages += 1
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == everything["items"] and pages == 3
    by_id = {i["execution_id"]: i for i in everything["items"]}
    e2, e3, e5 = by_id["e2"], by_id["e3"], by_id["e5"]
    assert (e2["status"], e2["duration_ms"], e2["systems"]) == ("succeeded", 1800, ["CRM", "ERP"])
    assert e2["started_at"] == iso_ms(T0 + 1000) and e2["finished_at"] == iso_ms(T0 + 2800)
    assert e2["step_counts"] == {"total": 2, "succeeded": 2, "failed": 0, "running": 0}
    assert e3["step_counts"] == {"total": 2, "succeeded": 1, "failed": 1, "running": 0}
    assert e5["step_counts"] == {"total": 1, "succeeded": 0, "failed": 0, "running": 1}
    assert await find(status="failed") == ["e4", "e3"]
    assert await find(system="CRM") == ["e3", "e2", "e1"]
    assert await find(module="Ledger") == ["e6"]
    assert await find(step_id="B") == ["e3", "e2", "e1"]
    assert await find(error_type="Http500") == ["e4"]
    assert await find(error_type="Timeout", status="succeeded") == ["e2"]
    assert await find(workflow_id="wf_s", since_ms=T0 + 1000, until_ms=T0 + 5000) == ["e3", "e2"]
    # One status of one workflow (executions_by_status), with its window and pages
    assert await find(workflow_id="wf_s", status="failed") == ["e4", "e3"]
    assert await find(workflow_id="wf_s", status="running") == ["e5"]
    assert await find(workflow_id="wf_o", status="failed") == []
    assert await find(workflow_id="wf_s", status="succeeded", until_ms=T0 + 1000) == ["e1"]
    first = await search.search_executions(ch, Filters(workflow_id="wf_s", status="succeeded"),
                                           1, database=db)  # fmt: skip
    second = await search.search_executions(ch, Filters(workflow_id="wf_s", status="succeeded"),
                                            1, first["next_cursor"], database=db)  # fmt: skip
    assert (ids(first), ids(second), second["next_cursor"]) == (["e2"], ["e1"], None)
    assert second["items"][0] == by_id["e1"]  # the same row, whichever table answered
    assert await find(tenant="other") == []
    with pytest.raises(ValueError):
        await search.search_executions(ch, Filters(), cursor="bm90IGEgY3Vyc29y", database=db)


async def test_search_pages_through_widening_windows(clickhouse: ClickHouse, db: str):
    """Search reads windows back from the cursor, wider each time: pages that cross
    windows, and empty windows between rows, still give every execution once, in order."""
    now = T0 + 400 * 86_400_000
    writer = BatchWriter(clickhouse, db)
    ages = {"s1": 60_000, "s2": 7_200_000, "s3": 108_000_000, "s4": 864_000_000,
            "s5": 8_640_000_000}  # 1 min, 2 h, 30 h, 10 d, 100 d before now
    for eid, age in ages.items():
        h = History(eid, tenant="spread")
        h.add("execution_started", now - age, mode="tracked")
        await writer.write(h.events)
    seen, cursor = [], None
    while True:
        page = await search.search_executions(clickhouse, Filters(tenant="spread"), 2, cursor,
                                              now_ms=now, database=db)  # fmt: skip
        seen.append(ids(page))
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == [["s1", "s2"], ["s3", "s4"], ["s5"]]
    bounded = Filters(tenant="spread", since_ms=now - 200_000_000, until_ms=now - 100_000)
    assert ids(await search.search_executions(clickhouse, bounded, now_ms=now, database=db)
               ) == ["s2", "s3"]  # fmt: skip


async def test_a_start_moved_earlier_leaves_one_row(clickhouse: ClickHouse, db: str):
    """A late report with an earlier start moves the execution in start order: search,
    summary and statistics see it once, at its new start."""
    h = History("moved", workflow_id="wf_m")
    h.add("execution_started", T0 + 10_000, mode="tracked", workflow_id="wf_m")
    h.add("step_started", T0 + 10_000, "A", system="ERP")
    writer = BatchWriter(clickhouse, db)
    await writer.write(h.events)
    h.add("step_succeeded", T0 + 10_500, "A", system="ERP", duration_ms=9_000)  # began 8,500 ago
    h.add("execution_completed", T0 + 10_600, status="succeeded")
    await BatchWriter(clickhouse, db).write(h.events[2:])  # prior state read back
    found = await search.search_executions(clickhouse, Filters(workflow_id="wf_m"), database=db)
    assert [(i["execution_id"], i["started_at"]) for i in found["items"]] == [
        ("moved", iso_ms(T0 + 1_500))]
    for status, expected in (("running", []), ("succeeded", [iso_ms(T0 + 1_500)])):
        found = await search.search_executions(
            clickhouse, Filters(workflow_id="wf_m", status=status), database=db)
        assert [i["started_at"] for i in found["items"]] == expected, status
    summary = await tracking.tracking_summary(
        clickhouse, filters=Filters(workflow_id="wf_m", **WINDOW), database=db)
    assert summary["total"] == 1 and summary["executions"] == {"succeeded": 1}
    figures = await stats.workflow_stats(clickhouse, "wf_m", Filters(**WINDOW), database=db)
    assert figures["runs"] == 1 and figures["duration_ms"]["avg"] == 9_100


async def test_a_status_change_moves_the_execution_between_status_searches(
    clickhouse: ClickHouse, db: str
):
    """Searching one status of one workflow shows an execution under its current status
    only: running, then failed, then running again (a retry), then succeeded."""
    h = History("flip", workflow_id="wf_f")
    h.add("execution_started", T0 + 20_000, mode="tracked", workflow_id="wf_f")
    h.add("step_started", T0 + 20_000, "A", system="ERP")
    marks = {"running": len(h.events)}
    h.add("step_failed", T0 + 20_100, "A", system="ERP", error="boom", error_type="Boom")
    h.add("execution_completed", T0 + 20_200, status="failed")
    marks["failed"] = len(h.events)
    h.add("execution_resumed", T0 + 21_000, command="retry")
    h.add("step_started", T0 + 21_000, "A", system="ERP", attempt=2)
    marks["running again"] = len(h.events)
    h.add("step_succeeded", T0 + 21_100, "A", system="ERP", attempt=2)
    h.add("execution_completed", T0 + 21_200, status="succeeded")
    marks["succeeded"] = len(h.events)

    async def under() -> list[str]:
        out = []
        for status in ("running", "failed", "succeeded"):
            page = await search.search_executions(
                clickhouse, Filters(workflow_id="wf_f", status=status), database=db)
            out += [status] * len(page["items"])
        return out

    done = 0
    for stage, upto in marks.items():
        await BatchWriter(clickhouse, db).write(h.events[done:upto])  # prior read back
        done = upto
        assert await under() == [stage.removesuffix(" again")], stage


async def test_tracking_summary_and_records_take_every_filter(clickhouse: ClickHouse, db: str):
    ch = clickhouse

    async def summary(**kw) -> dict:
        return await tracking.tracking_summary(ch, filters=Filters(**kw), database=db)

    every = await summary(**WINDOW)
    # 3 of 6 executions touch two systems (e1, e2, e3); 3 systems, 3 modules
    assert (every["cross_system_ratio"], every["systems"], every["modules"]) == (0.5, 3, 3)
    assert every["runs"] == 5 and every["failed_steps"] == 2  # e3's B, e4's A
    assert (await summary(workflow_id="wf_s", **WINDOW))["cross_system_ratio"] == 0.6
    crm = await summary(system="CRM", **WINDOW)
    assert crm["cross_system_ratio"] == 1.0 and crm["avg_duration_ms"] == 1033.33
    assert (await summary(status="running", **WINDOW))["executions"] == {"running": 1}
    # the default window is the last 24 h: the 2025 dataset is outside it
    assert (await summary())["total"] == 0

    timeouts = await tracking.tracking_records(
        ch, filters=Filters(error_type="Timeout"), database=db)  # fmt: skip
    assert [(r["execution_id"], r["step_id"], r["attempt"]) for r in timeouts["items"]] == [
        ("e2", "B", 1), ("e3", "B", 1)]  # fmt: skip
    failed_runs = await tracking.tracking_records(ch, filters=Filters(status="failed"),
                                                  database=db)  # fmt: skip
    assert [(r["execution_id"], r["step_id"]) for r in failed_runs["items"]] == [
        ("e3", "A"), ("e3", "B"), ("e4", "A")]  # fmt: skip
    assert (await tracking.tracking_records(ch, filters=Filters(tenant="x"), database=db)) == {
        "items": [], "next_cursor": None}  # fmt: skip


async def test_workflow_statistics_match_the_hand_figures(clickhouse: ClickHouse, db: str):
    got = await stats.workflow_stats(clickhouse, "wf_s", Filters(**WINDOW), interval="minute",
                                     database=db)  # fmt: skip
    durations = [500, 1800, 800, 200]  # e1..e4; e5 is running, e6 another workflow
    a, b = [80, 200, 300, 150], [250, 800, 600, 400]
    assert {k: got[k] for k in ("runs", "succeeded", "failed", "stopped", "success_rate")} == {
        "runs": 4, "succeeded": 2, "failed": 2, "stopped": 0, "success_rate": 0.5}  # fmt: skip
    assert got["duration_ms"] == {"avg": 825.0, "p50": pct(durations, 0.5),
                                  "p95": pct(durations, 0.95), "p99": pct(durations, 0.99)}
    assert got["duration_ms"]["p95"] == 1650.0  # 800 + 0.85 * (1800 - 800)
    assert got["slowest_steps"] == [
        {"step_id": "B", "p95_ms": pct(b, 0.95), "avg_ms": 512.5, "runs": 3},
        {"step_id": "A", "p95_ms": pct(a, 0.95), "avg_ms": 182.5, "runs": 4},
    ]
    total = sum(durations)
    assert got["bottlenecks"] == [{"step_id": "B", "share": round(sum(b) / total, 4)},
                                  {"step_id": "A", "share": round(sum(a) / total, 4)}]
    assert got["errors"] == [
        {"error_type": "Timeout", "count": 2, "share": round(2 / 3, 4),
         "last_occurrence": iso_ms(T0 + 3700), "example": "crm timed out again"},
        {"error_type": "Http500", "count": 1, "share": round(1 / 3, 4),
         "last_occurrence": iso_ms(T0 + 5150), "example": "erp returned 500"},
    ]  # fmt: skip
    waits = [20, 50, 0]  # e1 A, e1 B, e2 A: scheduled -> started
    assert got["queue_wait"] == {
        "avg_ms": round(sum(waits) / 3, 2), "p95_ms": pct(waits, 0.95), "samples": 3,
        "steps": [{"step_id": "B", "avg_ms": 50.0, "p95_ms": 50.0, "samples": 1},
                  {"step_id": "A", "avg_ms": 10.0, "p95_ms": pct([20, 0], 0.95), "samples": 2}],
    }  # fmt: skip
    assert got["series"] == [{"at": "2025-09-01T09:46:00.000Z", "runs": 4, "succeeded": 2,
                              "failed": 2, "stopped": 0, "success_rate": 0.5,
                              "avg_duration_ms": 825.0}]
    assert got["from"] == iso_ms(T0 - 1) and got["interval"] == "minute"

    only_b = await stats.workflow_stats(clickhouse, "wf_s", Filters(step_id="B", **WINDOW),
                                        database=db)  # fmt: skip
    assert only_b["runs"] == 3 and [s["step_id"] for s in only_b["slowest_steps"]] == ["B"]
    assert only_b["series"] is None
    empty = await stats.workflow_stats(clickhouse, "nope", Filters(**WINDOW), database=db)
    assert (empty["runs"], empty["success_rate"], empty["slowest_steps"], empty["errors"]) == (
        0, None, [], [])  # fmt: skip
    # the default window is the 24 h before now
    later = await stats.workflow_stats(clickhouse, "wf_s", Filters(), now_ms=T0 + 3_600_000,
                                       database=db)  # fmt: skip
    assert later["runs"] == 4 and later["to"] == iso_ms(T0 + 3_600_000)


async def test_an_execution_counts_under_the_workflow_a_start_command_gave_it(
    clickhouse: ClickHouse, db: str
):
    """Reported under wf_first, failed, retried, then given wf_second by a start command
    and succeeded: each workflow's statistics show it where it is now, and only there."""
    h = History("moved", workflow_id="wf_first")
    h.add("execution_started", T0 + 30_000, mode="tracked", workflow_id="wf_first")
    _step(h, T0 + 30_000, "A", ERP, 100, "step_failed", error="boom", error_type="Boom")
    h.add("execution_completed", T0 + 30_200, status="failed")
    first = len(h.events)
    h.add("execution_resumed", T0 + 31_000, command="retry")
    h.add("execution_updated", T0 + 31_000, mode="tracked", workflow_id="wf_second")
    h.add("step_started", T0 + 31_000, "A", system="ERP", attempt=2)
    h.add("step_succeeded", T0 + 31_300, "A", system="ERP", attempt=2)
    h.add("execution_completed", T0 + 31_400, status="succeeded")

    async def runs(workflow: str) -> tuple[int, int, int]:
        got = await stats.workflow_stats(clickhouse, workflow, Filters(**WINDOW), database=db)
        return got["runs"], got["succeeded"], got["failed"]

    await BatchWriter(clickhouse, db).write(h.events[:first])
    assert await runs("wf_first") == (1, 0, 1)
    await BatchWriter(clickhouse, db).write(h.events[first:])
    assert await runs("wf_first") == (0, 0, 0)
    assert await runs("wf_second") == (1, 1, 0)


async def test_system_and_module_statistics(clickhouse: ClickHouse, db: str):
    got = await stats.group_stats(clickhouse, "system", Filters(**WINDOW), database=db)
    items = {i["system"]: i for i in got["items"]}
    assert [i["system"] for i in got["items"]] == ["ERP", "CRM", "FIN"]  # most runs first
    erp, crm, fin = items["ERP"], items["CRM"], items["FIN"]
    assert (erp["runs"], erp["success_rate"], erp["attempts"], erp["failed_attempts"]) == (
        4, 0.5, 4, 1)  # fmt: skip
    assert erp["time_share"] == round(730 / 3300, 4)
    assert erp["step_duration_ms"]["p95"] == pct([80, 200, 300, 150], 0.95)
    assert (crm["runs"], crm["succeeded"], crm["success_rate"]) == (3, 2, round(2 / 3, 4))
    assert crm["duration_ms"]["avg"] == round(3100 / 3, 2)  # e1, e2, e3
    assert crm["time_share"] == round(2050 / 3100, 4)
    assert [(e["error_type"], e["count"], e["share"]) for e in crm["errors"]] == [
        ("Timeout", 2, 1.0)]  # fmt: skip
    assert (fin["runs"], fin["time_share"], fin["errors"]) == (1, 1.0, [])

    failed = await stats.group_stats(clickhouse, "system", Filters(status="failed", **WINDOW),
                                     database=db)  # fmt: skip
    assert [(i["system"], i["runs"]) for i in failed["items"]] == [("ERP", 2), ("CRM", 1)]
    crm_only = await stats.group_stats(clickhouse, "system", Filters(system="CRM", **WINDOW),
                                       database=db)  # fmt: skip
    assert [i["system"] for i in crm_only["items"]] == ["CRM"]

    modules = await stats.group_stats(clickhouse, "module", Filters(**WINDOW), interval="hour",
                                      database=db)  # fmt: skip
    assert [(i["module"], i["runs"]) for i in modules["items"]] == [
        ("Orders", 4), ("Customers", 3), ("Ledger", 1)]  # fmt: skip
    ledger = modules["items"][2]
    assert ledger["slowest_steps"] == [{"step_id": "C", "p95_ms": 100.0, "avg_ms": 100.0,
                                        "runs": 1}]  # fmt: skip
    assert ledger["series"] == [{"at": "2025-09-01T09:00:00.000Z", "runs": 1, "succeeded": 1,
                                 "failed": 0, "stopped": 0, "success_rate": 1.0,
                                 "avg_duration_ms": 100.0}]
    none = await stats.group_stats(clickhouse, "module", Filters(tenant="x"), database=db)
    assert none["items"] == []


async def test_errors_keep_their_figures_through_the_upgrade_that_adds_failed_attempts(
    clickhouse: ClickHouse, db: str
):
    """Error figures read the failed attempts' own arrays (migration 11). A database whose
    executions were stored before them gets them on migrate: the same errors, also for
    a step filter, and for the executions written after it."""
    ch = clickhouse
    columns = ("step_id", "system", "module", "error_type", "error", "at")
    for name in columns:
        await ch.command(f"ALTER TABLE {db}.executions_by_time DROP COLUMN f_{name}")
    await ch.command(f"DELETE FROM {db}.schema_migrations WHERE version = 11")
    assert await schema.migrate(ch, db) == [11]


    async def errors() -> list[tuple]:
        got = await stats.workflow_stats(ch, "wf_s", Filters(**WINDOW), database=db)
        return [(e["error_type"], e["count"], e["last_occurrence"], e["example"])
                for e in got["errors"]]  # fmt: skip

    assert await errors() == [("Timeout", 2, iso_ms(T0 + 3700), "crm timed out again"),
                              ("Http500", 1, iso_ms(T0 + 5150), "erp returned 500")]
    only_a = await stats.workflow_stats(ch, "wf_s", Filters(step_id="A", **WINDOW), database=db)
    assert [(e["error_type"], e["count"], e["share"]) for e in only_a["errors"]] == [
        ("Http500", 1, 1.0)]  # fmt: skip

    late = History("e7", workflow_id="wf_s")  # stored after the upgrade
    late.add("execution_started", T0 + 8000, mode="tracked", workflow_id="wf_s")
    _step(late, T0 + 8000, "A", ERP, 50, "step_failed", error_type="Http500",
          error="erp returned 502")
    late.add("execution_completed", T0 + 8100, status="failed")
    await BatchWriter(ch, db).write(late.events)
    assert await errors() == [("Http500", 2, iso_ms(T0 + 8050), "erp returned 502"),
                              ("Timeout", 2, iso_ms(T0 + 3700), "crm timed out again")]


async def test_realtime_figures(clickhouse: ClickHouse, db: str):
    now = T0 + 60_000  # 09:47:40; the executions started in minute 09:46
    got = await realtime.realtime_stats(clickhouse, Filters(), now_ms=now, database=db)
    assert got["active_executions"] == 1
    assert got["active_by_status"] == {"pending": 0, "queued": 0, "running": 1, "paused": 0}
    assert got["queue"] == {"queued": 0, "wait_ms": {"count": 0, "avg_ms": None, "p50_ms": None,
                                                     "p95_ms": None, "p99_ms": None}}
    per_minute = got["executions_per_minute"]
    assert len(per_minute) == 60 and per_minute[-1]["at"] == "2025-09-01T09:47:00.000Z"
    assert per_minute[-2] == {"at": "2025-09-01T09:46:00.000Z", "started": 6}
    assert sum(m["started"] for m in per_minute) == 6
    # step events in (now - 60 s, now]: all 22 but e1's first step_scheduled (at T0)
    assert got["step_events_per_second"] == round(21 / 60, 3)
    # failed step attempts 3 (e2 B, e3 B, e4 A) of 9 finished ones
    assert got["error_rate"] == round(3 / 9, 4)
    wf_o = await realtime.realtime_stats(clickhouse, Filters(workflow_id="wf_o"), now_ms=now,
                                         database=db)  # fmt: skip
    assert (wf_o["active_executions"], wf_o["error_rate"]) == (0, 0.0)
    quiet = await realtime.realtime_stats(clickhouse, Filters(), now_ms=now + 3_600_000,
                                          database=db)  # fmt: skip
    assert quiet["error_rate"] is None and quiet["step_events_per_second"] == 0
