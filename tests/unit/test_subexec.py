"""decide() with sub_execution steps (pure): the child's start, the outcome sent back to
the parent, stop/pause/retry carried to the child, and resends after a restore."""

from __future__ import annotations

from typing import Any

from streams.contracts import (
    ChildFinished,
    ControlCommand,
    Rehydrate,
    StartExecution,
    StopExecution,
)
from streams.subexec import child_id_for
from streams.view import describe
from tests.unit.runs import T0, Run, control, finish_ok, plan, start, update

CHILD_PLAN = {"steps": [
    {"id": "charge", "type": "api_call", "config": {"url": "http://pay/{{ input.order }}"}},
    {"id": "receipt", "type": "transform", "dependsOn": ["charge"],
     "config": {"mapping": {"paid": "{{ charge.amount }}"}}},
]}  # fmt: skip
PARENT = plan(
    {"id": "pay", "type": "sub_execution",
     "config": {"plan": CHILD_PLAN, "inputs": {"order": "{{ input.order }}"}}},
    {"id": "after", "type": "transform", "dependsOn": ["pay"],
     "config": {"mapping": {"paid": "{{ pay.outputs.receipt.paid }}"}}},
)  # fmt: skip


def child_run(parent: Run) -> tuple[Run, StartExecution]:
    starts = [m for m in parent.messages if isinstance(m, StartExecution)]
    child = Run()
    child(starts[-1])
    return child, starts[-1]


def outcomes(r: Run) -> list[ChildFinished]:
    return [m for m in r.messages if isinstance(m, ChildFinished)]


def test_a_child_runs_with_its_own_id_and_its_outcome_ends_the_parent_step():
    parent = Run()(start(PARENT, order="o-7"))
    child, msg = child_run(parent)
    assert msg.execution_id == child_id_for("e1", "pay", 1) == "e1.pay.1"
    assert (msg.parent_execution_id, msg.parent_step_id) == ("e1", "pay")
    assert msg.inputs == {"order": "o-7"}
    assert child.task("charge").config["url"] == "http://pay/o-7"
    assert child.state is not None and child.state.parent_execution_id == "e1"
    assert parent.statuses()["pay"] == "running"
    assert parent.state is not None and describe(parent.state)["child_executions"] == ["e1.pay.1"]
    finish_ok(child, "charge", T0 + 10, {"amount": 42})
    assert child.state.status == "succeeded"
    [done] = outcomes(child)
    assert done.execution_id == "e1" and done.status == "succeeded"
    parent(done)
    assert parent.state.steps["after"].output == {"paid": 42}
    assert parent.state.status == "succeeded"
    again = len(parent.events)
    parent(done)  # the same outcome again: nothing new
    assert len(parent.events) == again


def test_stopping_or_pausing_the_parent_is_carried_to_the_child():
    parent = Run()(start(PARENT, order="o"))
    parent(control("pause", T0 + 1))
    parent(control("resume", T0 + 2))
    parent(StopExecution(execution_id="e1", received_at=T0 + 3, command_id="s1"))
    sent = [(type(m).__name__, getattr(m, "action", None), m.execution_id)
            for m in parent.messages[1:]]  # fmt: skip
    assert sent == [("ControlCommand", "pause", "e1.pay.1"), ("ControlCommand", "resume",
                    "e1.pay.1"), ("StopExecution", None, "e1.pay.1")]  # fmt: skip
    child, _ = child_run(parent)
    child(parent.messages[-1])
    assert child.state is not None and child.state.status == "stopped"
    [stopped] = outcomes(child)
    parent(stopped)  # the parent is already stopped: nothing changes
    assert parent.statuses()["pay"] == "stopped"


def test_retrying_a_parent_retries_the_failed_child_not_a_new_one():
    parent = Run()(start(PARENT, order="o"))
    child, _ = child_run(parent)
    t = child.task("charge")
    child(update(t, "started", T0 + 5))(update(t, "failed", T0 + 9, error="402",
                                                error_type="HttpError"))  # fmt: skip
    assert child.state is not None and child.state.status == "failed"
    parent(outcomes(child)[-1])
    assert parent.state is not None and parent.state.status == "failed"
    assert parent.state.error_type == "HttpError"
    parent(control("retry", T0 + 20))
    retry = parent.messages[-1]
    assert isinstance(retry, ControlCommand) and retry.action == "retry"
    assert retry.execution_id == "e1.pay.1"
    child(retry)
    finish_ok(child, "charge", T0 + 30, {"amount": 5})
    parent(outcomes(child)[-1])
    assert parent.state.status == "succeeded" and parent.state.steps["after"].output == {
        "paid": 5}


def test_after_a_restore_the_start_and_the_outcome_are_sent_again():
    parent = Run()(start(PARENT, order="o"))
    child, first = child_run(parent)
    assert parent.state is not None
    restored = Run()(Rehydrate(execution_id="e1", received_at=T0 + 50,
                               state=parent.state.model_dump(mode="json")))
    [resent] = [m for m in restored.messages if isinstance(m, StartExecution)]
    assert resent.command_id == first.command_id  # the child ignores it while it runs
    before = len(child.events)
    child(resent)
    assert len(child.events) == before and not outcomes(child)
    finish_ok(child, "charge", T0 + 60, {"amount": 1})
    assert child.state is not None
    again = Run()(Rehydrate(execution_id=child.state.execution_id, received_at=T0 + 70,
                            state=child.state.model_dump(mode="json")))
    assert [m.child_seq for m in outcomes(again)] == [child.state.seq]


def test_a_child_plan_with_a_bad_template_fails_the_step_not_the_worker():
    bad: dict[str, Any] = {"id": "s", "type": "sub_execution",
                           "config": {"plan": CHILD_PLAN, "inputs": {"x": "{{ 1 / 0 }}"}}}
    r = Run()(start(plan(bad)))
    assert r.state is not None and r.state.status == "failed"
    assert r.state.steps["s"].reports[-1].error_type == "InvalidConfig"
    assert not r.messages


def test_a_child_may_start_a_child_of_its_own():
    inner = {"steps": [{"id": "leaf", "type": "transform", "config": {"mapping": {"v": "1"}}}]}
    outer = {"steps": [{"id": "inner", "type": "sub_execution", "config": {"plan": inner}}]}
    top = Run()(start(plan({"id": "outer", "type": "sub_execution", "config": {"plan": outer}})))
    child, msg = child_run(top)
    grandchild, gmsg = child_run(child)
    assert (msg.execution_id, gmsg.execution_id) == ("e1.outer.1", "e1.outer.1.inner.1")
    assert grandchild.state is not None and grandchild.state.status == "succeeded"
    child(outcomes(grandchild)[-1])
    assert child.state is not None and child.state.status == "succeeded"
    top(outcomes(child)[-1])
    assert top.state is not None and top.state.status == "succeeded"
    assert top.state.steps["outer"].output["outputs"]["inner"]["outputs"] == {  # type: ignore[index]
        "leaf": {"v": "1"}}
