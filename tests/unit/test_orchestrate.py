"""decide()/evolve() as pure functions: orchestrated mode (inline steps, tasks, branches,
retries with backoff, durable timers, stop and the execution timeout)."""

from __future__ import annotations

from functools import reduce

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.contracts import Rehydrate, StopExecution, Wake
from streams.machine import evolve, next_due_at
from streams.plan import RetryPolicy
from streams.state import step_statuses
from streams.steps import backoff_ms
from streams.times import ms_of
from streams.view import describe
from tests.unit.runs import CFG, T0, Run, finish_ok, plan, start, update

BRANCHY = plan(
    {"id": "start", "type": "start"},
    {"id": "fetch", "type": "api_call", "system": "ERP", "dependsOn": ["start"],
     "config": {"url": "http://erp/orders?d={{ input.date }}",
                "headers": {"Authorization": "Bearer s3cret"}}},
    {"id": "check", "type": "condition", "dependsOn": ["fetch"],
     "config": {"expression": "fetch.count >= 1", "true_path": ["post"],
                "false_path": ["alert"]}},
    {"id": "post", "type": "api_call", "dependsOn": ["check"],
     "config": {"url": "http://fin/post", "method": "POST", "body": {"n": "{{ fetch.count }}"}}},
    {"id": "alert", "type": "api_call", "dependsOn": ["check"], "config": {"url": "http://x/a"}},
    {"id": "after_alert", "type": "transform", "dependsOn": ["alert"],
     "config": {"mapping": {"x": "1"}}},
    {"id": "end", "type": "end", "dependsOn": ["post", "alert"]},
)  # fmt: skip


def test_inline_steps_run_in_the_machine_and_templates_are_rendered_into_the_task():
    r = Run()(start(BRANCHY, date="2025-09-01"))
    assert r.kinds("start") == ["step_succeeded"]
    fetch = r.task("fetch")
    assert fetch.config["url"] == "http://erp/orders?d=2025-09-01"
    assert fetch.task_id == "e1/fetch/1" and fetch.system == "ERP"
    scheduled = [e for e in r.events if e.event_type == "step_scheduled"][0]
    assert scheduled.data["input"]["headers"]["Authorization"] == "***"  # masked in the log
    assert fetch.config["headers"]["Authorization"] == "Bearer s3cret"  # not in the task
    assert r.statuses()["fetch"] == "scheduled"
    r(update(fetch, "started", T0 + 5))
    assert r.statuses()["fetch"] == "running"


def test_condition_skips_the_branch_not_taken_transitively_and_joins_run():
    r = Run()(start(BRANCHY, date="d"))
    finish_ok(r, "fetch", T0 + 100, {"count": 3})
    assert r.state is not None
    assert r.state.steps["check"].output == {"result": True}
    assert r.kinds("alert") == ["step_skipped"]
    assert r.kinds("after_alert") == ["step_skipped"]  # depends only on a skipped step
    assert [t.step_id for t in r.tasks] == ["fetch", "post"]  # nothing sent for `alert`
    assert r.task("post").config["body"] == {"n": 3}  # a lone expression keeps its type
    finish_ok(r, "post", T0 + 200)
    assert r.kinds("end") == ["step_succeeded"]  # join: one branch done, the other skipped
    assert r.state.status == "succeeded"
    assert describe(r.state)["progress"] == 1.0


def test_a_retryable_failure_is_retried_after_a_durable_backoff_timer():
    policy = {"max_retries": 3, "initial_delay": 1, "max_delay": 60}
    r = Run()(start(plan({"id": "a", "type": "api_call", "config": {"url": "http://a"},
                          "retry": policy})))  # fmt: skip
    t1 = r.task("a")
    r(update(t1, "started", T0 + 1))(update(t1, "failed", T0 + 50, error="503",
                                            error_type="ServiceUnavailable", retryable=True))
    assert r.kinds("a")[-2:] == ["step_failed", "step_retry_scheduled"]
    assert r.statuses()["a"] == "retrying"
    assert r.state is not None
    due = next_due_at(r.state, CFG)
    assert due == T0 + 50 + backoff_ms(RetryPolicy(**policy), "e1", "a", 1)
    r(Wake(execution_id="e1", received_at=due - 1))
    assert len(r.tasks) == 1  # not yet
    r(Wake(execution_id="e1", received_at=due + 700))
    t2 = r.task("a")
    assert t2.attempt == 2 and t2.task_id == "e1/a/2"
    fired = [e for e in r.events if e.event_type == "step_scheduled"][-1]
    assert ms_of(fired.timestamp) == due  # fired events carry the timer's time
    r(update(t2, "started", due + 800))(update(t2, "succeeded", due + 900, output={"ok": 1}))
    assert r.state.status == "succeeded"
    assert describe(r.state)["steps"][0]["attempts"] == 2


def test_non_retryable_errors_and_exhausted_retries_fail_at_once():
    p = plan({"id": "a", "type": "api_call", "config": {"url": "http://a"},
              "retry": {"max_retries": 2, "retryable_errors": ["Timeout"]}},
             {"id": "b", "type": "api_call", "dependsOn": ["a"], "config": {"url": "http://b"}})
    r = Run()(start(p))
    t = r.task("a")
    r(update(t, "failed", T0 + 10, error="HTTP 503", error_type="ServiceUnavailable",
             retryable=True))  # retryable class, but not in retryable_errors
    assert r.state is not None and r.state.status == "failed"
    assert r.statuses()["b"] == "blocked"
    assert describe(r.state)["error_type"] == "ServiceUnavailable"


def test_backoff_grows_exponentially_is_capped_and_is_derived_not_random():
    p = RetryPolicy(max_retries=10, initial_delay=1, max_delay=5)
    delays = [backoff_ms(p, "e1", "a", n) for n in range(1, 6)]
    assert delays == [backoff_ms(p, "e1", "a", n) for n in range(1, 6)]
    assert 800 <= delays[0] <= 1200 and 1600 <= delays[1] <= 2400
    assert max(delays) <= 5000 and delays[-1] == 5000
    assert backoff_ms(p, "e2", "a", 1) != delays[0] or backoff_ms(p, "e3", "a", 1) != delays[0]


def test_delay_is_a_timer_in_state_and_fires_on_wake():
    p = plan({"id": "wait", "type": "delay", "config": {"seconds": 3}},
             {"id": "go", "type": "api_call", "dependsOn": ["wait"], "config": {"url": "http://g"}})
    r = Run()(start(p))
    assert r.statuses()["wait"] == "running" and not r.tasks
    assert r.state is not None and next_due_at(r.state, CFG) == T0 + 3000
    # The state survives a restart as data: a rehydrated copy fires the same timer.
    r2 = Run()(Rehydrate(execution_id="e1", received_at=T0 + 10,
                         state=r.state.model_dump(mode="json")))
    r2(Wake(execution_id="e1", received_at=T0 + 3100))
    assert r2.kinds("wait")[-1] == "step_succeeded" and r2.task("go").attempt == 1


def test_rehydrate_dispatches_the_tasks_still_in_flight_again():
    r = Run()(start(BRANCHY, date="d"))
    assert r.state is not None
    r2 = Run()(Rehydrate(execution_id="e1", received_at=T0 + 5,
                         state=r.state.model_dump(mode="json")))
    assert [t.task_id for t in r2.tasks] == ["e1/fetch/1"]
    assert not r2.events


def test_stale_duplicate_and_foreign_task_updates_change_nothing():
    r = Run()(start(BRANCHY, date="d"))
    t = r.task("fetch")
    r(update(t, "started", T0 + 5))(update(t, "succeeded", T0 + 9, output={"count": 0}))
    n = len(r.events)
    r(update(t, "succeeded", T0 + 20, output={"count": 5}))  # redelivered
    r(update(t, "failed", T0 + 30, error="late"))
    wrong = t.model_copy(update={"attempt": 7, "task_id": "e1/fetch/7"})
    r(update(wrong, "succeeded", T0 + 40))
    assert len(r.events) == n
    assert r.state is not None and r.state.steps["fetch"].output == {"count": 0}


def test_stop_abandons_steps_in_flight_and_names_them():
    r = Run()(start(BRANCHY, date="d"))
    r(update(r.task("fetch"), "started", T0 + 5))
    r(StopExecution(execution_id="e1", received_at=T0 + 50, command_id="s1"))
    assert r.state is not None and r.state.status == "stopped"
    done = [e for e in r.events if e.event_type == "execution_completed"][0]
    assert done.data["stopped_at_steps"] == ["fetch"]
    assert r.events[-1].event_type == "step_failed"  # the abandoned attempt is closed
    assert r.events[-1].data["error_type"] == "Stopped"
    assert describe(r.state)["stopped_at_steps"] == ["fetch"]
    n = len(r.events)
    r(update(r.task("fetch"), "succeeded", T0 + 60))  # the abandoned call returns late
    assert len(r.events) == n and len(r.tasks) == 1
    r(StopExecution(execution_id="e1", received_at=T0 + 70, command_id="s2"))
    assert r.events[-1].event_type == "command_rejected"
    assert r.events[-1].data["reason"] == "already_finished"


def test_execution_timeout_stops_what_still_runs():
    r = Run()(start(BRANCHY, timeout_sec=30, date="d"))
    assert r.state is not None and next_due_at(r.state, CFG) == T0 + 30_000
    r(Wake(execution_id="e1", received_at=T0 + 30_500))
    assert r.state.status == "failed" and r.state.error_type == "Timeout"
    done = [e for e in r.events if e.event_type == "execution_completed"][0]
    assert done.data["stopped_at_steps"] == ["fetch"]
    assert ms_of(done.timestamp) == T0 + 30_000
    assert describe(r.state)["stopped_at_steps"] == ["fetch"]


def test_a_bad_template_fails_its_step_instead_of_the_worker():
    p = plan({"id": "t", "type": "transform", "config": {"mapping": {"x": "{{ input.a.b() }}"}}})
    r = Run()(start(p, a={"b": 1}))
    assert r.kinds("t") == ["step_failed"]
    assert r.state is not None and r.state.status == "failed"
    assert r.state.error_type == "ExpressionError"


def test_state_is_the_fold_of_its_events():
    r = Run()(start(BRANCHY, date="d"))
    finish_ok(r, "fetch", T0 + 100, {"count": 0})
    finish_ok(r, "alert", T0 + 200)
    assert reduce(evolve, r.events, None) == r.state


# -------------------------------------------------------------- property: interleavings

FLAKY = plan(
    {"id": "a", "type": "api_call", "config": {"url": "http://a"},
     "retry": {"max_retries": 2, "initial_delay": 0.5, "max_delay": 2}},
    {"id": "d", "type": "delay", "dependsOn": ["a"], "config": {"seconds": 1}},
    {"id": "b", "type": "api_call", "dependsOn": ["d"], "config": {"url": "http://b"}},
    {"id": "c", "type": "api_call", "dependsOn": ["a"], "config": {"url": "http://c"}},
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["wake", "ok", "fail", "start", "dup", "stop"]),
                          st.integers(0, 3_000)), max_size=40))  # fmt: skip
def test_any_interleaving_of_wakes_and_outcomes_gives_a_valid_state(script):
    r = Run()(start(FLAKY))
    now = T0
    for action, gap in script:
        now += gap
        open_tasks = [t for t in r.tasks if r.state and not r.state.finished]
        t = open_tasks[-1] if open_tasks else None
        if action == "wake" or t is None:
            r(Wake(execution_id="e1", received_at=now))
        elif action == "start":
            r(update(t, "started", now))
        elif action == "ok":
            r(update(t, "succeeded", now, output={"n": 1}))
        elif action == "fail":
            r(update(t, "failed", now, error="x", error_type="Timeout", retryable=True))
        elif action == "dup" and len(r.tasks) > 1:
            r(update(r.tasks[0], "succeeded", now))
        elif action == "stop":
            r(StopExecution(execution_id="e1", received_at=now, command_id=f"s{now}"))
    s = r.state
    assert s is not None
    assert [e.seq for e in r.events] == list(range(1, len(r.events) + 1))
    assert reduce(evolve, r.events, None) == s
    statuses = step_statuses(s)
    for sid in ("a", "b", "c", "d"):
        attempts = sum(1 for t in r.tasks if t.step_id == sid)
        assert attempts <= 3  # never more than 1 + max_retries
    if s.finished:
        assert all(st_ not in ("running", "scheduled", "retrying") for st_ in statuses.values())
        assert next_due_at(s, CFG) is None
    done = {"succeeded", "skipped"}
    for ps in FLAKY.steps:
        if statuses[ps.id] in ("succeeded", "running", "scheduled", "retrying"):
            assert all(statuses[d] in done for d in ps.depends_on)  # order respected


def test_an_outcome_with_its_start_time_records_the_start_it_did_not_send():
    r = Run()(start(plan({"id": "a", "type": "api_call", "config": {"url": "http://a"}})))
    t = r.task("a")
    r(update(t, "succeeded", T0 + 80, output={"ok": 1}, started_at=T0 + 30))
    assert r.kinds("a") == ["step_scheduled", "step_started", "step_succeeded"]
    assert r.state is not None and r.state.status == "succeeded"
    [row] = describe(r.state)["steps"]
    assert (row["attempts"], row["duration_ms"]) == (1, 50)
    r(update(t, "started", T0 + 90))  # a late duplicate start changes nothing
    assert r.kinds("a")[-1] == "step_succeeded"
