"""rows.project: events -> column-oriented rows, with no ClickHouse."""

from __future__ import annotations

import random

import orjson

from projections.rows import (
    EVENT_COLUMNS,
    EXECUTION_COLUMNS,
    STEP_RECORD_COLUMNS,
    dedup_token,
    project,
)
from streams.state import ExecutionState
from streams.times import ms_of
from tests.event_factory import T0, History, recon_execution, single_system_execution


def _records(rows) -> dict[tuple[str, int], dict]:
    return {(r["step_id"], r["attempt"]): r for r in rows.step_records.as_dicts()}


def test_one_batch_gives_every_row_worked_out_by_hand():
    h = recon_execution()
    out = project(h.events, {})
    assert out.events.names == EVENT_COLUMNS and len(out.events) == 17
    assert [r["seq"] for r in out.events.as_dicts()] == list(range(1, 18))
    assert out.duplicates == 0 and out.gaps == {}

    (execution,) = out.executions.as_dicts()
    assert out.executions.names == EXECUTION_COLUMNS
    assert execution["status"] == "failed" and execution["progress"] == 1.0
    assert execution["started_at"] == T0 and execution["finished_at"] == T0 + 3200
    assert execution["duration_ms"] == 3200 and execution["last_seq"] == 17
    assert execution["systems"] == ["CRM", "ERP", "FIN"]
    assert execution["modules"] == ["Customers", "Ledger", "Mail", "Orders"]
    assert execution["failed_steps"] == 1 and execution["plan_id"] == "plan_recon"
    assert execution["labels"] == {"team": "ops"} and execution["environment"] == "test"
    assert ExecutionState.model_validate_json(execution["state"]) == out.states["exec_recon"]

    assert out.step_records.names == STEP_RECORD_COLUMNS
    records = _records(out)
    expected = {
        ("fetch_a", 1): ("succeeded", T0 + 100, T0 + 400, 250),
        ("fetch_b", 1): ("succeeded", T0 + 150, T0 + 500, 350),
        ("normalize", 1): ("succeeded", T0 + 600, T0 + 900, 300),
        ("match", 1): ("failed", T0 + 1000, T0 + 1500, 500),
        ("match", 2): ("succeeded", T0 + 2000, T0 + 2600, 550),
        ("post", 1): ("failed", T0 + 2700, T0 + 3000, 300),
        ("notify", 1): ("succeeded", T0 + 3050, T0 + 3200, 150),
    }
    got = {
        k: (r["status"], r["started_at"], r["finished_at"], r["duration_ms"])
        for k, r in records.items()
    }
    assert got == expected
    assert records[("match", 1)]["error_type"] == "Timeout" and records[("match", 1)]["retryable"]
    assert records[("post", 1)]["error"] == "HTTP 400 from ledger"
    assert records[("notify", 1)]["system"] == "CRM" and records[("notify", 1)]["module"] == "Mail"
    assert {r["version"] for r in records.values()} == {17}
    assert {r["is_deleted"] for r in records.values()} == {0}


def test_event_rows_keep_the_contract():
    h = recon_execution()
    row = dict(zip(EVENT_COLUMNS, project(h.events, {}).events.columns, strict=True))
    tenth = {k: v[9] for k, v in row.items()}  # seq 10: step_failed of match
    e = h.events[9]
    assert tenth["event_id"] == e.event_id and tenth["step_id"] == "match"
    assert tenth["timestamp"] == ms_of(e.timestamp) and tenth["received_at"] == T0 + 1505
    assert orjson.loads(tenth["data"]) == e.data and orjson.loads(tenth["labels"]) == {}


def test_two_batches_fold_onto_the_prior_state():
    h = recon_execution()
    first = project(h.events[:8], {})
    second = project(h.events[8:], {"exec_recon": first.states["exec_recon"]})
    whole = project(h.events, {})
    assert second.states == whole.states
    # only the steps the second batch touched get rows
    assert set(_records(second)) == {("match", 1), ("match", 2), ("post", 1), ("notify", 1)}
    assert _records(first)[("normalize", 1)]["version"] == 8
    assert second.executions.as_dicts() == whole.executions.as_dicts()


def test_redelivered_events_are_dropped():
    h = recon_execution()
    first = project(h.events[:8], {})
    prior = {"exec_recon": first.states["exec_recon"]}
    again = project(h.events[:8], prior)
    assert again.empty and again.duplicates == 8 and len(again.executions) == 0
    overlap = project(h.events[5:12], prior)
    assert overlap.duplicates == 3 and [e.seq for e in overlap.applied] == [9, 10, 11, 12]


def test_a_gap_keeps_the_rest_of_that_execution_out():
    h = recon_execution()
    other = single_system_execution()
    first = project(h.events[:8], {})
    prior: dict[str, ExecutionState | None] = {"exec_recon": first.states["exec_recon"]}
    out = project([*h.events[9:], *other.events], prior)  # seq 9 of exec_recon is missing
    assert out.gaps == {"exec_recon": (9, 10, len(h.events) - 9)}
    assert "exec_recon" not in out.states and len(out.executions) == 1
    assert {e.execution_id for e in out.applied} == {"exec_erp"}
    partial = project([h.events[8], *h.events[10:]], prior)  # 9 kept, 11.. out
    assert [e.seq for e in partial.applied] == [9]
    assert partial.gaps == {"exec_recon": (10, 11, len(h.events) - 10)}


def test_arrival_order_within_a_batch_does_not_matter():
    h, other = recon_execution(), single_system_execution()
    batch = [*h.events, *other.events, *h.events[3:6]]
    shuffled = batch[:]
    random.Random(7).shuffle(shuffled)
    a, b = project(batch, {}), project(shuffled, {})
    assert a.states == b.states and a.duplicates == b.duplicates == 3
    assert sorted(a.step_records.as_dicts(), key=repr) == sorted(
        b.step_records.as_dicts(), key=repr
    )
    assert dedup_token(a.applied) == dedup_token(b.applied) == a.token


def test_dedup_token_is_the_set_of_execution_and_seq():
    h = recon_execution()
    assert dedup_token(h.events[:8]) == dedup_token(list(reversed(h.events[:8])))
    assert dedup_token(h.events[:8]) != dedup_token(h.events[:7])
    other = History("exec_other", events=[])
    other.add("execution_started", T0)
    assert dedup_token([h.events[0]]) != dedup_token(other.events)


def test_an_attempt_folded_away_by_a_late_report_is_retracted():
    h = History("exec_late")
    h.add("execution_started", T0, mode="tracked")
    h.add("step_skipped", T0 + 150, "s")  # alone: attempt 1 skipped (never ran: no record)
    h.add("step_succeeded", T0 + 300, "s")  # attempt 2, started at its end
    first = project(h.events, {})
    assert sorted(_records(first)) == [("s", 2)]
    h.add("step_started", T0 + 100, "s")  # now: one attempt 100..300; the skip is moot
    second = project(h.events[3:], {"exec_late": first.states["exec_late"]})
    records = _records(second)
    assert records[("s", 1)]["status"] == "succeeded" and records[("s", 1)]["is_deleted"] == 0
    assert records[("s", 1)]["duration_ms"] == 200
    assert records[("s", 2)]["is_deleted"] == 1 and records[("s", 2)]["version"] == 4


def test_the_by_time_row_carries_step_counts_and_every_attempt():
    out = project(recon_execution().events, {})
    (row,) = out.by_time.as_dicts()
    records = out.step_records.as_dicts()
    assert (row["steps_total"], row["steps_succeeded"], row["steps_failed"]) == (6, 5, 1)
    assert row["step_ids"] == sorted({r["step_id"] for r in records})
    assert row["error_types"] == sorted({r["error_type"] for r in records if r["error_type"]})
    attempts = sorted(zip(row["a_step_id"], row["a_attempt"], row["a_status"],
                          row["a_duration_ms"], strict=True))  # fmt: skip
    assert attempts == sorted((r["step_id"], r["attempt"], r["status"], r["duration_ms"])
                              for r in records)  # fmt: skip
    assert row["is_deleted"] == 0 and row["last_seq"] == 17


def test_a_start_moved_earlier_retracts_the_row_under_the_old_start():
    h = History("exec_moved")
    h.add("execution_started", T0 + 1000, mode="tracked")
    first = project(h.events, {})
    h.add("step_succeeded", T0 + 1200, "s", duration_ms=700)  # began at T0 + 500
    second = project(h.events[1:], {"exec_moved": first.states["exec_moved"]})
    old, new = second.by_time.as_dicts()
    assert (old["started_at"], old["is_deleted"], old["last_seq"]) == (T0 + 1000, 1, 2)
    assert (new["started_at"], new["is_deleted"], new["last_seq"]) == (T0 + 500, 0, 2)
    third = project([h.add("log", T0 + 1300, message="same start")], second.states)
    assert [r["is_deleted"] for r in third.by_time.as_dicts()] == [0]
