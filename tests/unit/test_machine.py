"""decide()/evolve() as pure functions: tracked mode."""

from __future__ import annotations

from functools import reduce

from hypothesis import given
from hypothesis import strategies as st

from streams.contracts import FinishExecution, Report, ReportBatch, StartExecution, Wake
from streams.machine import MachineConfig, decide, evolve
from streams.plan import Plan
from streams.state import ExecutionState, attempts_of, step_statuses
from streams.view import describe
from tests.unit.runs import as_stored

CFG = MachineConfig(tracked_idle_timeout_ms=60_000)
PLAN = Plan.model_validate({"id": "p", "steps": [
    {"id": "a", "system": "ERP"},
    {"id": "b", "dependsOn": ["a"], "system": "WMS"},
    {"id": "c", "dependsOn": ["a"], "system": "FIN"},
]})  # fmt: skip


def start(eid: str = "e1", at: int = 1_000, plan: Plan | None = PLAN, cid: str = "c1"):
    return StartExecution(execution_id=eid, received_at=at, command_id=cid, plan=plan)


def rep(rid: str, kind: str, step: str | None, ts: int, **data) -> Report:
    return Report(report_id=rid, event_type=kind, step_id=step, timestamp=ts, data=data)


def batch(*reports: Report, at: int = 2_000, eid: str = "e1") -> ReportBatch:
    return ReportBatch(execution_id=eid, received_at=at, reports=reports)


def run(*msgs, state: ExecutionState | None = None):
    events = []
    for m in msgs:
        d = decide(state, m, CFG)
        state = as_stored(d.state)
        events.extend(d.events)
    return state, events


def test_start_then_reports_finish_failed_with_blocked_dependents():
    state, events = run(start(), batch(
        rep("r1", "step_started", "a", 1_100),
        rep("r2", "step_succeeded", "a", 1_300),
        rep("r3", "step_started", "b", 1_400),
        rep("r4", "step_failed", "b", 1_500, error="boom", error_type="Timeout"),
    ))
    assert state is not None and state.status == "running"  # c has not run yet
    state, more = run(batch(rep("r5", "step_failed", "c", 1_700, error="x", error_type="Http400"),
                            at=3_000), state=state)
    assert state.status == "failed"
    assert more[-1].event_type == "execution_completed" and more[-1].data["status"] == "failed"
    detail = describe(state)
    assert detail["progress"] == 1.0 and detail["duration_ms"] == 700


def test_blocked_step_is_reported_and_execution_finishes_when_nothing_can_progress():
    state, _ = run(start(), batch(rep("r1", "step_failed", "a", 1_200, duration_ms=50)))
    assert state is not None and state.status == "failed"
    assert describe(state)["blocked_steps"] == ["b", "c"]
    assert attempts_of(state.steps["a"])[0].started_at == 1_150  # ts - duration_ms


def test_seq_is_gapless_and_event_ids_stable_across_replay():
    msgs = [start(), batch(rep("r1", "step_started", "a", 1_100), rep("r2", "log", None, 1_150))]
    _, events1 = run(*msgs)
    _, events2 = run(*msgs)
    assert [e.seq for e in events1] == list(range(1, len(events1) + 1))
    assert [e.event_id for e in events1] == [e.event_id for e in events2]


def test_resent_batch_and_start_change_nothing():
    b = batch(rep("r1", "step_started", "a", 1_100))
    state, events = run(start(), b)
    again, more = run(b, start(), state=state)
    assert more == [] and again == state


def test_execution_created_by_first_report_then_start_attaches_plan():
    state, events = run(batch(rep("r1", "step_succeeded", "a", 1_100)), start(at=2_500))
    assert [e.event_type for e in events] == [
        "execution_started", "step_succeeded", "execution_updated"]
    assert state is not None and state.plan == PLAN and state.status == "running"


def test_retryable_failure_is_not_final():
    state, _ = run(start(), batch(rep("r1", "step_failed", "a", 1_100, retryable=True)))
    assert state is not None and step_statuses(state)["a"] == "retrying"
    assert state.status == "running"
    state, _ = run(batch(rep("r2", "step_succeeded", "a", 1_300), at=2_100), state=state)
    assert step_statuses(state)["a"] == "succeeded" and len(attempts_of(state.steps["a"])) == 2


def test_finish_by_hand_and_rejection_when_finished():
    state, events = run(start(plan=None), FinishExecution(
        execution_id="e1", received_at=5_000, command_id="f1", status="stopped"))
    assert state is not None and state.status == "stopped" and events[-1].cause_id == "f1"
    state, events = run(FinishExecution(execution_id="e1", received_at=6_000, command_id="f2",
                                        status="succeeded"), state=state)
    assert events[-1].event_type == "command_rejected"
    assert events[-1].data["reason"] == "already_finished"


def test_reported_execution_completed_without_plan():
    state, _ = run(batch(rep("r1", "step_succeeded", "x", 1_000),
                         rep("r2", "execution_completed", None, 1_200, status="succeeded")))
    assert state is not None and state.status == "succeeded" and state.finished_at == 1_200


def test_idle_timer_abandons_a_tracked_execution_only_when_due():
    state, _ = run(start(plan=None, at=1_000))
    same, none = run(Wake(execution_id="e1", received_at=60_999), state=state)
    assert none == [] and same == state
    state, events = run(Wake(execution_id="e1", received_at=61_000), state=state)
    assert state is not None and state.status == "failed" and state.error_type == "Abandoned"
    assert events[0].timestamp.endswith("01:01.000Z") and events[0].data["due_at"]


def test_state_is_the_fold_of_its_events():
    state, events = run(start(), batch(rep("r1", "step_started", "a", 1_100),
                                       rep("r2", "step_succeeded", "a", 1_200)))
    assert reduce(evolve, events, None) == state


# ---------------------------------------------------------------- property tests


@st.composite
def step_histories(draw):
    """Reports a real reporter can send for PLAN: every attempt but the last is a retryable
    failure, and b/c only run after a succeeded (a failed `a` blocks them)."""
    reports = []
    t = 1_000
    a_ok = False
    for step in ("a", "b", "c"):
        if step != "a" and not a_ok:
            break
        n = draw(st.integers(min_value=0 if step != "a" else 1, max_value=3))
        for i in range(n):
            last = i == n - 1
            outcome = draw(st.sampled_from(["step_succeeded", "step_failed", "running"])
                           ) if last else "step_failed"
            rid = f"{step}{i}"
            if draw(st.booleans()) or outcome == "running":
                reports.append(rep(rid + "s", "step_started", step, t))
            t += draw(st.integers(min_value=1, max_value=500))
            if outcome != "running":
                reports.append(rep(rid + "e", outcome, step, t, retryable=not last,
                                   error_type=None if outcome == "step_succeeded" else "E"))
            t += 1
        if step == "a":
            a_ok = bool(reports) and reports[-1].event_type == "step_succeeded"
    return reports


@given(step_histories(), st.randoms(use_true_random=False), st.integers(1, 4))
def test_any_interleaving_and_duplication_gives_the_same_final_state(reports, rnd, chunks):
    in_order, _ = run(start(), batch(*reports))
    shuffled = reports + [r for r in reports if rnd.random() < 0.3]
    rnd.shuffle(shuffled)
    size = max(1, len(shuffled) // chunks)
    parts = [shuffled[i:i + size] for i in range(0, len(shuffled), size)]
    state, events = run(start(), *[batch(*p, at=2_000 + i) for i, p in enumerate(parts)])
    assert state is not None and in_order is not None
    assert state.status == in_order.status
    assert step_statuses(state) == step_statuses(in_order)
    for sid in in_order.steps:
        assert attempts_of(state.steps[sid]) == attempts_of(in_order.steps[sid])
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert reduce(evolve, events, None) == state


def test_rehydrate_installs_the_archived_state_only_when_newer():
    from streams.contracts import Rehydrate

    archived, _ = run(start(), batch(rep("r1", "step_started", "a", 1_100)))
    assert archived is not None
    msg = Rehydrate(execution_id="e1", received_at=9_000, state=archived.model_dump(mode="json"))
    installed, events = run(msg)
    assert installed == archived and events == []
    newer, _ = run(batch(rep("r2", "step_succeeded", "a", 1_200), at=3_000), state=archived)
    kept, events = run(msg, state=newer)
    assert kept == newer and events == []
    # the next report continues the archived seq
    after, events = run(batch(rep("r3", "step_started", "b", 1_300), at=9_500), state=installed)
    assert [e.seq for e in events] == [archived.seq + 1]
