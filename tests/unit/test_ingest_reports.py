"""`POST /events` writes each execution's `ReportBatch` without building `Report` models:
what it writes must be what the models would have written, and decode to the same."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from api.models import EventBatch
from api.routes.ingest import report_batch_json, report_of
from streams.contracts import Report, ReportBatch
from streams.executors.masking import Masker

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=8,
)  # fmt: skip
events = st.fixed_dictionaries(
    {"execution_id": st.sampled_from(["ex_1", "ex_2"]),
     "event_type": st.sampled_from(["step_started", "step_succeeded", "log", "metric"]),
     "step_id": st.sampled_from(["charge", "ship"]),
     "timestamp": st.sampled_from(["2026-12-05T10:00:00.123Z", "2026-12-05T11:00:00+08:00"])},
    optional={"event_id": st.text(min_size=1, max_size=10), "message": st.text(max_size=20),
              "data": st.dictionaries(st.sampled_from(["n", "password", "X-Api-Key", "rows"]),
                                      json_values, max_size=4),
              "system": st.text(max_size=5), "module": st.none() | st.text(max_size=5),
              "workflow_id": st.text(max_size=5), "tenant": st.sampled_from(["default", "t2"]),
              "labels": st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2)},
)  # fmt: skip


@given(st.lists(events, min_size=1, max_size=6))
def test_a_report_batch_is_what_the_models_would_write(raw):
    batch = EventBatch.model_validate(json.loads(json.dumps({"events": raw})))  # as FastAPI
    mask = Masker.of(["rows"])
    reports = [report_of(ev, mask) for ev in batch.events]
    fast = report_batch_json("ex_1", "default", 1_700_000_000_123, reports)
    model = ReportBatch(execution_id="ex_1", tenant="default", received_at=1_700_000_000_123,
                        reports=tuple(Report(**r) for r in reports))  # fmt: skip
    assert ReportBatch.model_validate_json(fast) == model
    assert json.loads(fast) == json.loads(model.model_dump_json())


def test_secrets_and_configured_names_are_masked_before_they_are_written():
    batch = EventBatch.model_validate({"events": [{
        "execution_id": "ex_1", "event_type": "step_failed", "step_id": "pay",
        "timestamp": "2026-12-05T10:00:00Z",
        "data": {"password": "hunter2", "card": {"api_token": "t", "last4": "4242"},
                 "rows": 3, "huge": 2**80}}]})  # fmt: skip
    doc = json.loads(report_batch_json("ex_1", "default", 1, [
        report_of(ev, Masker.of(["rows"])) for ev in batch.events]))  # fmt: skip
    assert doc["reports"][0]["data"] == {"password": "***", "card": {"api_token": "***",
                                         "last4": "4242"}, "rows": "***", "huge": 2**80}
    assert doc["reports"][0]["timestamp"] == 1_796_464_800_000


def test_a_masker_keeps_its_verdicts_right_past_its_cache():
    mask = Masker.of(["acct"])
    names = [f"field_{i}" for i in range(9_000)] + ["my_acct", "Session-Token"]
    for _ in range(2):  # the second round reads the verdicts the first one kept
        masked = mask({n: 1 for n in names})
        assert [n for n, v in masked.items() if v == "***"] == ["my_acct", "Session-Token"]
