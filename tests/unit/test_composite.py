"""decide() with parallel and loop steps (pure): fan-out limits, joins, races, iterations
with loop.index / loop.item, break_on_error, and pause, stop, retry and rerun inside."""

from __future__ import annotations

from typing import Any

from streams.plan import Plan
from streams.validation import validate_plan
from streams.view import describe
from tests.unit.runs import T0, Run, control, finish_ok, plan, start, update


def call(sid: str, **extra: Any) -> dict[str, Any]:
    return {"id": sid, "type": "api_call", "config": {"url": f"http://x/{sid}"}, **extra}


def fan(wait_for_all: bool = True, max_concurrent: int | None = None) -> Plan:
    cfg: dict[str, Any] = {"branches": ["a", "b", "c"], "wait_for_all": wait_for_all}
    if max_concurrent:
        cfg["max_concurrent"] = max_concurrent
    return plan(
        {"id": "fan", "type": "parallel", "config": cfg},
        call("a"), call("b"), call("c"),
        {"id": "after", "type": "transform", "dependsOn": ["fan"],
         "config": {"mapping": {"b": "{{ fan.b.n }}"}}},
    )  # fmt: skip


def fail(r: Run, sid: str, at: int, error_type: str = "HttpError") -> None:
    t = r.task(sid)
    r(update(t, "started", at))(update(t, "failed", at + 5, error="boom", error_type=error_type))


def test_parallel_starts_at_most_max_concurrent_branches_and_joins_their_outputs():
    r = Run()(start(fan(max_concurrent=2)))
    assert [t.step_id for t in r.tasks] == ["a", "b"]  # c waits for a free slot
    assert r.statuses()["fan"] == "running"
    finish_ok(r, "a", T0 + 10, {"n": 1})
    assert [t.step_id for t in r.tasks] == ["a", "b", "c"]
    finish_ok(r, "c", T0 + 20, {"n": 3})
    assert r.statuses()["fan"] == "running"  # b still runs
    finish_ok(r, "b", T0 + 30, {"n": 2})
    assert r.state is not None and r.state.status == "succeeded"
    assert r.state.steps["fan"].output == {"a": {"n": 1}, "b": {"n": 2}, "c": {"n": 3}}
    assert r.state.steps["after"].output == {"b": 2}


def test_parallel_without_wait_for_all_takes_the_first_success_and_stops_the_rest():
    r = Run()(start(fan(wait_for_all=False, max_concurrent=2)))
    fail(r, "a", T0 + 5)  # a failure does not decide the race
    assert r.statuses()["fan"] == "running"
    finish_ok(r, "c", T0 + 20, {"n": 3})  # c started when a failed; b still runs
    st = r.statuses()
    assert st["b"] == "stopped" and st["c"] == "succeeded" and st["fan"] == "succeeded"
    assert r.state is not None and r.state.status == "succeeded"
    assert r.state.steps["fan"].output == {"c": {"n": 3}}
    late = [t for t in r.tasks if t.step_id == "b"][-1]
    r(update(late, "succeeded", T0 + 40, output={"n": 2}))  # too late: changes nothing
    assert r.state.steps["fan"].output == {"c": {"n": 3}}


def test_a_failed_branch_fails_the_parallel_after_all_ran_and_retry_reruns_only_it():
    r = Run()(start(fan()))
    fail(r, "b", T0 + 5)
    assert r.statuses()["fan"] == "running"  # a and c still run
    finish_ok(r, "a", T0 + 10, {"n": 1})
    finish_ok(r, "c", T0 + 10, {"n": 3})
    assert r.state is not None and r.state.status == "failed"
    assert r.statuses()["fan"] == "failed" and r.statuses()["after"] == "blocked"
    assert r.state.error_type == "HttpError"
    sent = len(r.tasks)
    r(control("retry", T0 + 100))
    assert [t.step_id for t in r.tasks[sent:]] == ["b"]  # a and c keep their outputs
    assert r.task("b").attempt == 2
    finish_ok(r, "b", T0 + 110, {"n": 2})
    assert r.state.status == "succeeded" and r.state.steps["after"].output == {"b": 2}


def test_stop_inside_a_parallel_stops_every_running_branch():
    r = Run()(start(fan(max_concurrent=2)))
    r(control("pause", T0 + 1))
    finish_ok(r, "a", T0 + 10, {"n": 1})
    assert [t.step_id for t in r.tasks] == ["a", "b"]  # paused: c does not start
    r(control("resume", T0 + 20))
    assert [t.step_id for t in r.tasks] == ["a", "b", "c"]
    from streams.contracts import StopExecution

    r(StopExecution(execution_id="e1", received_at=T0 + 30, command_id="s1"))
    st = r.statuses()
    assert (st["b"], st["c"], st["fan"], st["a"]) == ("stopped", "stopped", "stopped",
                                                      "succeeded")


LOOPED = plan(
    {"id": "each", "type": "loop",
     "config": {"items": "{{ input.orders }}", "body": ["get", "shape"]}},
    {"id": "get", "type": "api_call",
     "config": {"url": "http://x/o/{{ loop.item }}?i={{ loop.index }}"}},
    {"id": "shape", "type": "transform", "dependsOn": ["get"],
     "config": {"mapping": {"order": "{{ loop.item }}", "qty": "{{ get.qty }}"}}},
    {"id": "done", "type": "transform", "dependsOn": ["each"],
     "config": {"mapping": {"n": "{{ each.iterations }}"}}},
)  # fmt: skip


def test_a_loop_runs_its_body_per_item_with_qualified_step_ids():
    r = Run()(start(LOOPED, orders=["A", "B", "C"]))
    assert r.task("get[0]").config["url"] == "http://x/o/A?i=0"
    finish_ok(r, "get[0]", T0 + 10, {"qty": 1})
    assert r.state is not None and r.state.steps["shape[0]"].output == {"order": "A", "qty": 1}
    assert r.task("get[1]").config["url"] == "http://x/o/B?i=1"
    finish_ok(r, "get[1]", T0 + 20, {"qty": 2})
    finish_ok(r, "get[2]", T0 + 30, {"qty": 3})
    assert r.state.status == "succeeded"
    out = r.state.steps["each"].output
    assert out is not None and out["iterations"] == 3
    assert [it["shape"] for it in out["results"]] == [
        {"order": "A", "qty": 1}, {"order": "B", "qty": 2}, {"order": "C", "qty": 3}]
    assert r.state.steps["done"].output == {"n": 3}
    ids = [s["step_id"] for s in describe(r.state)["steps"]]
    assert ids[:4] == ["each", "get[0]", "shape[0]", "get[1]"] and "get" not in ids


def test_a_condition_loop_stops_when_it_turns_false_or_at_max_iterations():
    def looping(n: int, cap: int) -> Plan:
        return plan(
            {"id": "w", "type": "loop", "config": {"condition": "loop.index < input.n",
                                                   "body": ["t"], "max_iterations": cap}},
            {"id": "t", "type": "transform", "config": {"mapping": {"i": "{{ loop.index }}"}}},
        )  # fmt: skip

    r = Run()(start(looping(3, 10), n=3))
    assert r.state is not None and r.state.status == "succeeded"
    assert r.state.steps["w"].output == {"results": [{"t": {"i": 0}}, {"t": {"i": 1}},
                                                     {"t": {"i": 2}}], "iterations": 3}
    capped = Run()(start(looping(50, 4), n=50))
    assert capped.state is not None and capped.state.steps["w"].output["iterations"] == 4


def test_break_on_error_fails_the_loop_and_retry_resumes_at_the_failed_iteration():
    r = Run()(start(LOOPED, orders=["A", "B", "C"]))
    finish_ok(r, "get[0]", T0 + 10, {"qty": 1})
    fail(r, "get[1]", T0 + 20)
    assert r.state is not None and r.state.status == "failed"
    st = r.statuses()
    assert (st["each"], st["get[1]"], st["done"]) == ("failed", "failed", "blocked")
    assert "get[2]" not in r.state.steps
    sent = len(r.tasks)
    r(control("retry", T0 + 100))
    assert [(t.step_id, t.attempt) for t in r.tasks[sent:]] == [("get[1]", 2)]
    finish_ok(r, "get[1]", T0 + 110, {"qty": 2})
    finish_ok(r, "get[2]", T0 + 120, {"qty": 3})
    assert r.state.status == "succeeded"
    assert r.state.steps["each"].output["iterations"] == 3  # type: ignore[index]


def test_without_break_on_error_a_failed_iteration_is_recorded_and_the_loop_goes_on():
    p = Plan.model_validate({**LOOPED.model_dump(by_alias=True), "steps": [
        {**LOOPED.steps[0].model_dump(by_alias=True),
         "config": {**LOOPED.steps[0].config, "break_on_error": False}},
        *[s.model_dump(by_alias=True) for s in LOOPED.steps[1:]]]})  # fmt: skip
    r = Run()(start(p, orders=["A", "B"]))
    fail(r, "get[0]", T0 + 10)
    finish_ok(r, "get[1]", T0 + 20, {"qty": 2})
    assert r.state is not None and r.state.status == "succeeded"
    results = r.state.steps["each"].output["results"]  # type: ignore[index]
    assert results[0] == {"get": {"error": "boom", "error_type": "HttpError"}}
    assert results[1]["shape"] == {"order": "B", "qty": 2}


def test_pause_holds_the_next_iteration_and_rerun_starts_the_loop_over():
    r = Run()(start(LOOPED, orders=["A", "B"]))
    r(control("pause", T0 + 1))
    finish_ok(r, "get[0]", T0 + 10, {"qty": 1})
    assert "get[1]" not in {t.step_id for t in r.tasks}  # paused between iterations
    r(control("resume", T0 + 20))
    finish_ok(r, "get[1]", T0 + 30, {"qty": 2})
    assert r.state is not None and r.state.status == "succeeded"
    r(control("rerun", T0 + 40, step_id="each", inputs={"orders": ["Z"]}))
    assert r.task("get[0]").config["url"] == "http://x/o/Z?i=0"  # items fixed anew
    finish_ok(r, "get[0]", T0 + 50, {"qty": 9})
    assert r.state.status == "succeeded"
    assert r.state.steps["each"].output["iterations"] == 1  # type: ignore[index]
    r(control("rerun", T0 + 60, step_id="get", cid="bad"))
    assert r.events[-1].data["reason"] == "inside_composite"


def test_a_loop_whose_items_are_not_a_list_fails_with_the_reason():
    r = Run()(start(LOOPED, orders="A,B"))
    assert r.state is not None and r.state.status == "failed"
    assert "must be a list" in (r.state.steps["each"].reports[-1].error or "")


def test_plan_validation_names_what_composites_may_not_do():
    bad = plan(
        {"id": "p", "type": "parallel", "config": {"branches": ["x", "l"]}},
        {"id": "x", "type": "api_call", "dependsOn": ["y"], "config": {"url": "http://x"}},
        {"id": "y", "type": "api_call", "config": {"url": "http://y"}},
        {"id": "l", "type": "loop", "config": {"body": ["z"]}},
        {"id": "z", "type": "api_call", "config": {"url": "http://z"}},
        {"id": "w", "type": "api_call", "dependsOn": ["z"], "config": {"url": "http://w"}},
        {"id": "s[1]", "type": "sub_execution", "config": {"plan": {"steps": [
            {"id": "k", "type": "nope"}]}}},
    )  # fmt: skip
    problems = {(p["step_id"], p["problem"].split(":")[0].split(",")[0])
                for p in validate_plan(bad)}  # fmt: skip
    assert ("l", "a loop cannot run inside 'p'; nest it through a sub_execution") in problems
    assert ("x", "dependsOn 'y'") in problems
    assert ("w", "dependsOn 'z'") in problems
    assert ("l", "a loop needs either items or a condition") in problems
    assert ("s[1]", "a step id may not end in [n] (that names a loop iteration)") in problems
    assert ("s[1]", "config.plan") in problems  # the child plan's unknown step type


def test_when_every_branch_fails_a_race_fails_too():
    r = Run()(start(fan(wait_for_all=False)))
    for sid in ("a", "b", "c"):
        fail(r, sid, T0 + 10)
    assert r.state is not None and r.state.status == "failed"
    assert r.statuses()["fan"] == "failed" and r.statuses()["after"] == "blocked"


def test_debug_mode_runs_the_parallel_and_then_each_branch_one_step_at_a_time():
    r = Run()(start(fan(max_concurrent=2), debug=True))
    assert r.state is not None and r.state.status == "paused"
    assert r.events[-1].data["next_step"] == "fan"
    ran = []
    for n in range(4):
        before = len(r.events)
        r(control("step", T0 + 10 + n, cid=f"s{n}"))
        ran.append([e.step_id for e in r.events[before:]])
    assert ran[:3] == [["fan"], ["a"], ["b"]]  # each `step` starts one
    assert r.events[-1].data["reason"] == "nothing_ready"  # c waits for a free slot
    finish_ok(r, "a", T0 + 20, {"n": 1})
    r(control("step", T0 + 30, cid="s9"))
    assert [t.step_id for t in r.tasks] == ["a", "b", "c"]
