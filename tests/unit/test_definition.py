"""Seed 003's nodes + connections become a plan: one step per node, each connection type
mapped, seed words translated, every problem named with its node."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from streams.definition import Definition, to_plan
from streams.validation import validate_plan


def plan_of(nodes: list[dict[str, Any]], connections: list[dict[str, Any]] = (), **kw: Any):
    plan, problems = to_plan(Definition.model_validate(
        {"nodes": nodes, "connections": list(connections), **kw}), plan_id="wf")
    assert problems == [] and plan is not None, problems
    assert validate_plan(plan) == []
    return {s.id: s for s in plan.steps}


def test_each_node_type_and_a_sequence_become_steps_with_dependencies():
    steps = plan_of([
        {"id": 1, "name": "start", "node_type": "START"},
        {"id": 2, "name": "fetch", "node_type": "API_CALL",
         "config": {"url": "http://erp/orders", "parameters": {"d": "{{input.value}}"}}},
        {"id": 3, "name": "wait", "node_type": "DELAY", "config": {"seconds": 1}},
        {"id": 4, "name": "shape", "node_type": "transform", "config": {"mapping": {"n": "1"}}},
        {"id": 5, "name": "end", "node_type": "END"},
    ], [{"from_node_id": 1, "to_node_id": 2}, {"from_node_id": 2, "to_node_id": 3},
        {"from_node_id": 3, "to_node_id": 4, "connection_type": "sequence"},
        {"from_node_id": 4, "to_node_id": 5}])  # fmt: skip
    assert {sid: (s.type, s.depends_on) for sid, s in steps.items()} == {
        "start": ("start", ()), "fetch": ("api_call", ("start",)), "wait": ("delay", ("fetch",)),
        "shape": ("transform", ("wait",)), "end": ("end", ("shape",))}
    assert steps["fetch"].config["parameters"] == {"d": "{{input.value}}"}


def test_a_condition_node_takes_seed_words_and_its_true_and_false_connections():
    steps = plan_of([
        {"id": 1, "name": "check", "node_type": "CONDITION",
         "config": {"condition": "{{input.score}} >= 60", "true_path": "pass",
                    "false_path": "fail"}},
        {"id": 2, "name": "pass", "node_type": "API_CALL", "config": {"url": "http://a"}},
        {"id": 3, "name": "fail", "node_type": "API_CALL", "config": {"url": "http://b"}},
    ], [{"from_node_id": 1, "to_node_id": 2, "connection_type": "CONDITIONAL_TRUE"},
        {"from_node_id": 1, "to_node_id": 3, "connection_type": "CONDITIONAL_FALSE"}])
    check = steps["check"]
    assert check.config == {"expression": "{{input.score}} >= 60", "true_path": ["pass"],
                            "false_path": ["fail"]}  # fmt: skip
    assert steps["pass"].depends_on == ("check",) and steps["fail"].depends_on == ("check",)


def test_a_conditional_connection_becomes_a_condition_step_between_its_nodes():
    steps = plan_of([
        {"id": 1, "name": "a", "node_type": "api_call", "config": {"url": "http://a"}},
        {"id": 2, "name": "b", "node_type": "api_call", "config": {"url": "http://b"}},
    ], [{"from_node_id": 1, "to_node_id": 2, "connection_type": "CONDITIONAL",
         "condition": "a.status == 200"}])
    gate = steps["a_to_b_if"]
    assert gate.type == "condition" and gate.depends_on == ("a",)
    assert gate.config == {"expression": "a.status == 200", "true_path": ["b"], "false_path": []}
    assert steps["b"].depends_on == ("a_to_b_if",)


def test_parallel_and_loop_connections_fill_branches_and_body():
    steps = plan_of([
        {"id": 1, "name": "fan", "node_type": "PARALLEL",
         "config": {"max_concurrent": 3, "wait_for_all": True}},
        {"id": 2, "name": "t1", "node_type": "API_CALL", "config": {"url": "http://1"}},
        {"id": 3, "name": "t2", "node_type": "API_CALL", "config": {"url": "http://2"}},
        {"id": 4, "name": "each", "node_type": "LOOP",
         "config": {"condition": "{{loop.index}} < {{input.max_count}}", "max_iterations": 10,
                    "break_on_error": True}},
        {"id": 5, "name": "body", "node_type": "API_CALL",
         "config": {"url": "http://x", "parameters": {"index": "{{loop.index}}"}}},
    ], [{"from_node_id": 1, "to_node_id": 2, "connection_type": "PARALLEL"},
        {"from_node_id": 1, "to_node_id": 3, "connection_type": "PARALLEL"},
        {"from_node_id": 1, "to_node_id": 4},
        {"from_node_id": 4, "to_node_id": 5, "connection_type": "LOOP"}])  # fmt: skip
    assert steps["fan"].config["branches"] == ["t1", "t2"]
    assert steps["t1"].depends_on == () and steps["each"].depends_on == ("fan",)
    assert steps["each"].config["body"] == ["body"] and steps["body"].depends_on == ()


def test_step_ids_come_from_string_ids_then_usable_names_then_node_numbers():
    steps = plan_of([
        {"id": "fetch", "name": "取数", "node_type": "api", "config": {"url": "http://a"}},
        {"id": 2, "name": "API调用节点", "node_type": "API_CALL", "config": {"url": "http://b"}},
        {"id": 3, "name": "dup", "node_type": "API_CALL", "config": {"url": "http://c"}},
        {"id": 4, "name": "dup", "node_type": "API_CALL", "config": {"url": "http://d"}},
    ], edges=[{"source": "fetch", "target": 2, "animated": True}])
    assert list(steps) == ["fetch", "node_2", "node_3", "node_4"]
    assert steps["node_2"].name == "API调用节点" and steps["node_2"].depends_on == ("fetch",)


def test_the_same_definition_gives_the_same_plan():
    d = {"nodes": [{"id": i, "name": f"s{i}", "node_type": "api_call",
                    "config": {"url": f"http://{i}"}} for i in range(1, 6)],
         "connections": [{"from_node_id": i, "to_node_id": i + 1} for i in range(1, 5)]}
    first, _ = to_plan(Definition.model_validate(d), plan_id="wf")
    second, _ = to_plan(Definition.model_validate(d), plan_id="wf")
    assert first is not None and first == second


def problems_of(nodes: list[dict[str, Any]], connections: list[dict[str, Any]] = ()):
    plan, problems = to_plan(Definition.model_validate(
        {"nodes": nodes, "connections": list(connections)}))
    assert plan is None
    return {(p["node_id"], p["problem"]) for p in problems}


def test_problems_name_their_node():
    assert problems_of([
        {"id": 1, "name": "call", "node_type": "API_CALL", "config": {"api_id": 1}},
        {"id": 2, "name": "check", "node_type": "CONDITION",
         "config": {"condition": "x", "true_path": "nowhere"}},
        {"id": 3, "name": "x", "node_type": "API_CALL", "config": {"url": "http://x"}},
    ], [{"id": 7, "from_node_id": 3, "to_node_id": 1, "connection_type": "LOOP"},
        {"id": 8, "from_node_id": 3, "to_node_id": 9}]) == {
        (1, "config.api_id names an API registry Runledger does not have: give config.url "
            "(and method, headers, body)"),
        (2, "config.true_path names no node: 'nowhere'"),
        (7, "a LOOP connection starts at a loop node; x is a api_call"),
        (8, "connection 3 -> 9: no node 9"),
    }  # fmt: skip


def test_node_types_without_an_executor_are_named_by_validation():
    plan, _ = to_plan(Definition.model_validate({"nodes": [
        {"id": 1, "name": "ask", "node_type": "llm"},
        {"id": 2, "name": "form", "node_type": "input"}]}))
    assert plan is not None
    assert {(p["step_id"], p["problem"].split(" (")[0]) for p in validate_plan(plan)} == {
        ("ask", "unknown step type 'llm'"), ("form", "unknown step type 'input'")}


def test_an_unknown_connection_type_is_refused_with_the_known_ones():
    with pytest.raises(ValidationError, match="not one of SEQUENCE, CONDITIONAL"):
        Definition.model_validate({"nodes": [], "connections": [
            {"from_node_id": 1, "to_node_id": 2, "connection_type": "GOTO"}]})


def test_an_empty_definition_or_a_plan_step_list():
    assert to_plan(Definition())[1] == [{"step_id": "", "problem": "the workflow has no nodes"}]
    plan, problems = to_plan(Definition.model_validate(
        {"steps": [{"id": "a", "type": "api_call", "config": {"url": "http://a"}}]}), name="n")
    assert problems == [] and plan is not None and plan.name == "n"


def test_a_node_or_connection_that_cannot_be_a_step_is_a_problem_not_a_crash():
    long_id = "x" * 300  # a node id is free text; a step id has at most 200 characters
    plan, problems = to_plan(Definition.model_validate({"nodes": [
        {"id": long_id, "type": "transform"}, {"id": 2, "type": "transform"}]}))
    assert plan is None and problems[0]["node_id"] == long_id
    assert "at most 200 characters" in problems[0]["problem"]
    a, b = "a" * 150, "b" * 150  # fine alone, too long together as a condition step's id
    plan, problems = to_plan(Definition.model_validate({
        "nodes": [{"id": a, "type": "transform"}, {"id": b, "type": "transform"}],
        "connections": [{"source": a, "target": b, "condition": "x"}]}))
    assert plan is None and "a connection cannot become a step" in problems[0]["problem"]
    # A node without an id (null) is named as a problem; the others still get their ids.
    plan, problems = to_plan(Definition.model_validate({"nodes": [
        {"id": None, "type": "transform"}, {"id": "ok", "type": "transform"}]}))
    assert plan is None and problems == [{"node_id": None, "step_id": "",
                                          "problem": "a node needs an id"}]
