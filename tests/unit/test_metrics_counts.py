"""The worker counts its emitted events once per batch: the totals are per event."""

from __future__ import annotations

from prometheus_client import REGISTRY

from runledger.metrics import count_events
from streams.contracts import Event


def _event(seq: int, kind: str, error_type: str | None = None) -> Event:
    return Event(event_id=f"ev{seq}", cause_id=f"c{seq}", execution_id="ex_metrics", seq=seq,
                 event_type=kind, step_id="s", timestamp="2026-12-05T10:00:00.000Z",
                 data={"error_type": error_type} if error_type else {})  # type: ignore[arg-type]


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_every_event_and_every_ended_attempt_is_counted_once():
    names = [("runledger_events_total", {"event_type": "step_started"}),
             ("runledger_events_total", {"event_type": "step_failed"}),
             ("runledger_step_outcomes_total", {"outcome": "failed", "error_type": "Timeout"}),
             ("runledger_step_outcomes_total", {"outcome": "succeeded", "error_type": ""})]
    before = [_value(n, **labels) for n, labels in names]
    count_events([_event(1, "step_started"), _event(2, "step_failed", "Timeout"),
                  _event(3, "step_started"), _event(4, "step_failed", "Timeout"),
                  _event(5, "step_succeeded")])  # fmt: skip
    count_events([])
    after = [_value(n, **labels) for n, labels in names]
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 2, 2, 1]
