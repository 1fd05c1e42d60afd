"""The fold's copy-with-update gives what pydantic's ``model_copy(update=...)`` gives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.fold import _replace
from streams.state import ExecutionState, StepReport, StepState

STEP = StepState(step_id="charge", system="erp", reports=[
    StepReport(report_id="r1", event_type="step_started", ts=5)])  # fmt: skip
STATE = ExecutionState(execution_id="ex_1", seq=3, applied={"a", "b"}, steps={"charge": STEP})

state_updates = st.fixed_dictionaries({}, optional={
    "seq": st.integers(0, 10**6), "status": st.sampled_from(["running", "failed", "paused"]),
    "applied": st.sets(st.text(max_size=5)), "finished_at": st.none() | st.integers(0, 10**12),
    "message": st.text(max_size=20), "steps": st.just({"charge": STEP, "ship": StepState(
        step_id="ship")})})  # fmt: skip
step_updates = st.fixed_dictionaries({}, optional={
    "scheduled": st.integers(0, 9), "due_at": st.none() | st.integers(0, 10**12),
    "waiting": st.booleans(), "output": st.none() | st.just({"id": 7}),
    "reports": st.just([])})  # fmt: skip


def _same(a: object, b: object) -> None:
    assert a == b
    assert type(a) is type(b)
    assert a.model_fields_set == b.model_fields_set  # type: ignore[attr-defined]
    assert a.model_dump_json() == b.model_dump_json()  # type: ignore[attr-defined]
    assert a.model_dump_json(exclude_unset=True) == b.model_dump_json(  # type: ignore[attr-defined]
        exclude_unset=True)


@given(state_updates)
def test_an_execution_state_copy_matches_model_copy(update):
    before = STATE.model_dump_json()
    _same(_replace(STATE, update), STATE.model_copy(update=update))
    assert STATE.model_dump_json() == before  # the original is left as it was


@given(step_updates)
def test_a_step_state_copy_matches_model_copy(update):
    before = STEP.model_dump_json()
    _same(_replace(STEP, update), STEP.model_copy(update=update))
    assert STEP.model_dump_json() == before
