"""Control commands in decide(): pause/resume, retry, rerun, input, debug step, refusals,
and a property test over random sequences of commands and outcomes."""

from __future__ import annotations

from functools import reduce

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.contracts import Report, ReportBatch, StartExecution, StopExecution, Wake
from streams.machine import evolve, next_due_at
from streams.state import step_statuses
from streams.view import describe
from tests.unit.runs import CFG, T0, Run, control, finish_ok, plan, start, update

CHAIN = plan(
    {"id": "a", "type": "api_call", "config": {"url": "http://a/{{ input.n }}"}},
    {"id": "wait", "type": "delay", "dependsOn": ["a"], "config": {"seconds": 2}},
    {"id": "b", "type": "api_call", "dependsOn": ["wait"], "config": {"url": "http://b/{{ a.v }}"}},
    {"id": "c", "type": "api_call", "dependsOn": ["b"], "config": {"url": "http://c"}},
)  # fmt: skip


def rejected(r: Run) -> str:
    last = r.events[-1]
    assert last.event_type == "command_rejected", last
    return str(last.data["reason"])


def test_pause_lets_running_steps_finish_and_timers_fire_but_starts_nothing():
    r = Run()(start(CHAIN, n=1))
    r(control("pause", T0 + 5))
    assert r.state is not None and r.state.status == "paused"
    assert r.events[-1].data["status"] == "paused"
    finish_ok(r, "a", T0 + 10, {"v": 7})  # the running call finishes and is recorded
    assert r.statuses()["a"] == "succeeded" and r.statuses()["wait"] == "pending"
    assert [t.step_id for t in r.tasks] == ["a"]
    r(control("resume", T0 + 100))
    assert r.statuses()["wait"] == "running"
    r(control("pause", T0 + 200))
    r(Wake(execution_id="e1", received_at=T0 + 2200))  # the delay fires while paused
    assert r.statuses()["wait"] == "succeeded" and [t.step_id for t in r.tasks] == ["a"]
    r(control("resume", T0 + 3000))
    assert r.task("b").config["url"] == "http://b/7"


def test_a_retry_due_while_paused_waits_for_resume():
    p = plan({"id": "a", "type": "api_call", "config": {"url": "http://a"},
              "retry": {"max_retries": 2, "initial_delay": 1}})
    r = Run()(start(p))
    r(update(r.task("a"), "failed", T0 + 10, error="503", error_type="ServiceUnavailable",
             retryable=True))
    r(control("pause", T0 + 20))
    assert r.state is not None and next_due_at(r.state, CFG) is None  # nothing to wake
    r(Wake(execution_id="e1", received_at=T0 + 5000))
    assert len(r.tasks) == 1
    r(control("resume", T0 + 6000))
    assert [t.attempt for t in r.tasks] == [1, 2]


def test_retry_reruns_only_the_failed_steps_and_keeps_earlier_outputs():
    r = Run()(start(CHAIN, n=1))
    finish_ok(r, "a", T0 + 10, {"v": 7})
    r(Wake(execution_id="e1", received_at=T0 + 3000))
    r(update(r.task("b"), "failed", T0 + 3100, error="HTTP 400", error_type="BadRequest"))
    assert r.state is not None and r.state.status == "failed"
    assert r.statuses()["c"] == "blocked"
    r(control("retry", T0 + 4000, cid="r1"))
    assert r.state.status == "running"
    assert r.events[-2].event_type == "execution_resumed"
    assert r.events[-2].data["retry_steps"] == ["b"]
    assert [(t.step_id, t.attempt) for t in r.tasks] == [("a", 1), ("b", 1), ("b", 2)]
    assert r.state.steps["a"].output == {"v": 7}
    finish_ok(r, "b", T0 + 4100)
    finish_ok(r, "c", T0 + 4200)
    assert r.state.status == "succeeded"
    n = len(r.events)
    r(control("retry", T0 + 5000, cid="r1"))  # the same command again: nothing
    assert len(r.events) == n
    r(control("retry", T0 + 5000, cid="r2"))
    assert rejected(r) == "not_failed"


def test_rerun_from_a_middle_step_with_edited_inputs_keeps_what_came_before():
    p = plan({"id": "a", "type": "api_call", "config": {"url": "http://a"}},
             {"id": "b", "type": "api_call", "dependsOn": ["a"],
              "config": {"url": "http://b/{{ input.n }}/{{ a.v }}"}},
             {"id": "c", "type": "transform", "dependsOn": ["b"],
              "config": {"mapping": {"got": "{{ b.x }}"}}})  # fmt: skip
    r = Run()(start(p, n=1))
    finish_ok(r, "a", T0 + 10, {"v": 7})
    finish_ok(r, "b", T0 + 20, {"x": 1})
    assert r.state is not None and r.state.status == "succeeded"
    r(control("rerun", T0 + 100, step_id="b", inputs={"n": 2}))
    assert r.state.status == "running" and r.state.inputs == {"n": 2}
    assert r.task("b").config["url"] == "http://b/2/7" and r.task("b").attempt == 2
    assert r.statuses() == {"a": "succeeded", "b": "scheduled", "c": "pending"}
    assert r.state.steps["c"].output is None
    finish_ok(r, "b", T0 + 200, {"x": 2})
    assert r.state.status == "succeeded" and r.state.steps["c"].output == {"got": 2}
    assert [t.step_id for t in r.tasks] == ["a", "b", "b"]  # `a` never again
    detail = describe(r.state)
    assert {s["step_id"]: s["attempts"] for s in detail["steps"]} == {"a": 1, "b": 2, "c": 2}
    r(control("rerun", T0 + 300, step_id="zz"))
    assert rejected(r) == "unknown_step"


def test_rerun_checks_the_edited_inputs_against_the_plan():
    p = plan({"id": "a", "type": "transform", "inputsSpec": {"n": "integer"},
              "config": {"mapping": {"n": "{{ input.n }}"}}})
    r = Run()(start(p, n=1))
    assert r.state is not None and r.state.status == "succeeded"
    r(control("rerun", T0 + 10, step_id="a", inputs={"n": "two"}))
    assert rejected(r) == "invalid_input"
    assert r.events[-1].data["problems"][0]["field"] == "inputs.n"
    r(control("rerun", T0 + 20, step_id="a", inputs={"n": 2}))
    assert r.state.status == "succeeded" and r.state.steps["a"].output == {"n": 2}


def test_rerun_after_a_stop_starts_fresh_attempts_and_ignores_the_abandoned_one():
    r = Run()(start(CHAIN, n=1))
    first = r.task("a")
    r(update(first, "started", T0 + 5))
    r(StopExecution(execution_id="e1", received_at=T0 + 10, command_id="s"))
    assert r.state is not None and r.state.status == "stopped"
    assert describe(r.state)["stopped_at_steps"] == ["a"]
    r(control("rerun", T0 + 20, step_id="a"))
    second = r.task("a")
    assert second.attempt == 2 and r.statuses()["a"] == "scheduled"
    r(update(first, "succeeded", T0 + 30, output={"v": 1}))  # the abandoned call returns
    assert r.statuses()["a"] == "scheduled"
    finish_ok(r, "a", T0 + 40, {"v": 2})
    assert r.state.steps["a"].output == {"v": 2}


WAIT = plan(
    {"id": "ask", "type": "wait_input", "config": {
        "prompt": "approve {{ input.n }}?", "timeout_seconds": 60,
        "input_schema": {"type": "object", "required": ["ok"],
                         "properties": {"ok": {"type": "boolean"}, "note": {"type": "string"}}}}},
    {"id": "go", "type": "api_call", "dependsOn": ["ask"],
     "config": {"url": "http://go/{{ ask.ok }}"}},
)  # fmt: skip


def test_a_waiting_step_takes_a_valid_answer_and_refuses_bad_or_late_ones():
    r = Run()(start(WAIT, n=3))
    asked = [e for e in r.events if e.event_type == "user_input_required"][0]
    assert asked.data["prompt"] == "approve 3?" and asked.data["input_schema"]["required"]
    assert r.statuses()["ask"] == "waiting_input"
    r(control("input", T0 + 10, step_id="ask", data={"ok": "yes", "note": 5}))
    assert rejected(r) == "invalid_input"
    fields = {p["field"] for p in r.events[-1].data["problems"]}
    assert fields == {"data.ok", "data.note"}
    r(control("input", T0 + 20, step_id="go", data={"ok": True}))
    assert rejected(r) == "not_waiting"
    r(control("input", T0 + 30, step_id="ask", data={"ok": True}))
    assert r.events[-3].event_type == "input_received" or r.kinds("ask")[-1] == "step_succeeded"
    assert r.task("go").config["url"] == "http://go/True"
    r(control("input", T0 + 40, step_id="ask", data={"ok": False}))
    assert rejected(r) == "not_waiting"  # late


def test_an_unanswered_input_times_out():
    r = Run()(start(WAIT, n=1))
    r(Wake(execution_id="e1", received_at=T0 + 61_000))
    assert r.state is not None and r.state.status == "failed"
    assert describe(r.state)["steps"][0]["error_type"] == "InputTimeout"


def test_debug_pauses_before_every_step_and_step_runs_one_resume_leaves_debug():
    r = Run()(start(CHAIN, debug=True, n=1))
    assert r.state is not None and r.state.status == "paused" and not r.tasks
    assert r.events[-1].data["next_step"] == "a"
    assert r.events[-1].data["next_input"]["url"] == "http://a/1"  # resolved
    r(control("step", T0 + 10))
    assert [t.step_id for t in r.tasks] == ["a"]
    r(control("step", T0 + 11))
    assert rejected(r) == "nothing_ready"  # `a` still runs
    finish_ok(r, "a", T0 + 20, {"v": 1})
    assert r.statuses()["wait"] == "pending"  # paused: the next waits for `step`
    paused = [e for e in r.events if e.event_type == "execution_paused"]
    assert [e.data["next_step"] for e in paused] == ["a", "wait"]  # each announced once
    r(control("step", T0 + 25))
    finish_ok(r, "a", T0 + 26, {"v": 1})  # a duplicate outcome announces nothing again
    assert [e.data["next_step"] for e in r.events if e.event_type == "execution_paused"] \
        == ["a", "wait"]  # fmt: skip
    assert r.statuses()["wait"] == "running"
    r(control("resume", T0 + 40))
    assert r.state.debug is False
    r(Wake(execution_id="e1", received_at=T0 + 2100))
    assert r.task("b").attempt == 1  # no longer stepping


def test_tracked_executions_refuse_control_and_finished_ones_refuse_pause():
    r = Run()(StartExecution(execution_id="e1", received_at=T0, command_id="c1"))
    for action in ("pause", "resume", "retry"):
        r(control(action, T0 + 1))
        assert rejected(r) == "not_orchestrated"
    r = Run()(start(CHAIN, n=1))
    r(StopExecution(execution_id="e1", received_at=T0 + 1, command_id="s"))
    r(control("pause", T0 + 2))
    assert rejected(r) == "already_finished"
    r(control("resume", T0 + 3))
    assert rejected(r) == "already_finished"


# ------------------------------------------------------------------ property

ACTIONS = ["pause", "resume", "retry", "rerun", "step", "stop", "ok", "fail", "wake", "dup"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 2_500)), max_size=40),
       st.booleans())  # fmt: skip
def test_random_commands_and_outcomes_keep_the_state_valid(script, debug):
    r = Run()(start(CHAIN, debug=debug, n=1))
    now = T0
    last_cmd = None
    for i, (action, gap) in enumerate(script):
        now += gap
        open_task = r.tasks[-1] if r.tasks else None
        if action in ("pause", "resume", "retry", "rerun", "step"):
            last_cmd = control(action, now, cid=f"k{i}", step_id="b" if action == "rerun" else None)
            r(last_cmd)
        elif action == "stop":
            r(StopExecution(execution_id="e1", received_at=now, command_id=f"s{i}"))
        elif action == "ok" and open_task:
            r(update(open_task, "started", now))
            r(update(open_task, "succeeded", now, output={"v": 1}))
        elif action == "fail" and open_task:
            r(update(open_task, "failed", now, error="x", error_type="BadRequest"))
        elif action == "dup" and last_cmd is not None:
            n = len(r.events)
            r(last_cmd)  # a duplicate command changes nothing
            assert len(r.events) == n
        else:
            r(Wake(execution_id="e1", received_at=now))
    s = r.state
    assert s is not None
    assert [e.seq for e in r.events] == list(range(1, len(r.events) + 1))
    assert reduce(evolve, r.events, None) == s
    statuses = step_statuses(s)
    if s.finished:
        assert not {"running", "scheduled", "retrying", "waiting_input"} & set(statuses.values())
    for ps in CHAIN.steps:  # a step only ever runs after its dependencies
        if statuses[ps.id] in ("succeeded", "running", "scheduled"):
            assert all(statuses[d] in ("succeeded", "skipped") for d in ps.depends_on)
    ids = [t.task_id for t in r.tasks]
    assert len(ids) == len(set(ids))  # a task id is never dispatched twice


def test_reported_events_do_not_resume_a_paused_execution():
    r = Run()(start(plan({"id": "x", "type": "external"},
                         {"id": "y", "type": "api_call", "dependsOn": ["x"],
                          "config": {"url": "http://y"}})))  # fmt: skip
    r(control("pause", T0 + 1))
    r(ReportBatch(execution_id="e1", received_at=T0 + 2, reports=(
        Report(report_id="r1", event_type="step_succeeded", step_id="x", timestamp=T0 + 2),)))
    assert r.statuses()["x"] == "succeeded" and not r.tasks
    r(control("resume", T0 + 3))
    assert r.task("y").attempt == 1


def test_debug_announces_the_next_step_after_one_that_finishes_at_once():
    r = Run()(start(plan(
        {"id": "t1", "type": "transform", "config": {"mapping": {"x": "{{ input.n }}"}}},
        {"id": "t2", "type": "transform", "dependsOn": ["t1"],
         "config": {"mapping": {"y": "{{ t1.x }}!"}}},
    ), debug=True, n=1))  # fmt: skip
    r(control("step", T0 + 10))
    paused = [e for e in r.events if e.event_type == "execution_paused"]
    assert [e.data["next_step"] for e in paused] == ["t1", "t2"]
    assert paused[-1].data["next_input"] == {"mapping": {"y": "1!"}}
    assert r.state is not None and r.state.status == "paused"
