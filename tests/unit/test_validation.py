"""Plan and input validation: every problem at once, each naming its step or field."""

from __future__ import annotations

from streams.plan import Plan
from streams.validation import canonical_type, validate_inputs, validate_plan


def plan(*steps: dict) -> Plan:
    return Plan.model_validate({"id": "p", "steps": list(steps)})


def problems_by_step(p: Plan) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for problem in validate_plan(p):
        out.setdefault(problem["step_id"], []).append(problem["problem"])
    return out


def test_a_good_plan_has_no_problems():
    good = plan(
        {"id": "start", "type": "START"},
        {"id": "fetch", "type": "api", "dependsOn": ["start"],
         "config": {"method": "GET", "url": "http://erp/orders?date={{ input.date }}"}},
        {"id": "check", "type": "condition", "dependsOn": ["fetch"],
         "config": {"expression": "steps.fetch.output.data.count >= 1",
                    "true_path": ["post"], "false_path": []}},
        {"id": "post", "type": "API_CALL", "dependsOn": ["check"],
         "config": {"method": "POST", "url": "http://fin/{{ steps.fetch.output.id }}",
                    "body": {"n": "{{ fetch.count }}"}}},
        {"id": "end", "type": "end", "dependsOn": ["post"]},
    )
    assert validate_plan(good) == []


def test_every_problem_is_named_with_its_step():
    bad = plan(
        {"id": "a", "type": "teleport"},
        {"id": "b", "type": "api_call", "config": {"method": "FETCH"}},
        {"id": "c", "type": "delay", "config": {"seconds": 1}, "dependsOn": ["ghost"]},
        {"id": "d", "type": "transform", "config": {"mapping": {"x": "{{ steps.nope.output }}"}}},
        {"id": "e", "type": "condition",
         "config": {"expression": "x", "true_path": ["missing"]}},
        {"id": "f", "type": "condition", "config": {"expression": "input.score >="}},
    )
    found = problems_by_step(bad)
    assert "unknown step type 'teleport'" in found["a"][0]
    assert any("config.method" in p for p in found["b"])
    assert any("config.url" in p for p in found["b"])
    assert any("ghost" in p for p in found["c"])
    assert found["d"] == ["template refers to unknown step 'nope'"]
    assert found["e"] == ["config.true_path names unknown step 'missing'"]
    assert found["f"][0].startswith("config.expression: condition 'input.score >='")


def test_cycles_name_the_steps_in_the_cycle():
    found = problems_by_step(plan({"id": "a", "dependsOn": ["c"]}, {"id": "b", "dependsOn": ["a"]},
                                  {"id": "c", "dependsOn": ["b"]}))
    [(step, [problem])] = found.items()
    assert "dependency cycle" in problem and all(s in problem for s in "abc")


def test_steps_that_cannot_be_reached_from_start_are_reported():
    found = problems_by_step(plan({"id": "s", "type": "start"},
                                  {"id": "x", "dependsOn": ["s"]}, {"id": "island"}))
    assert found == {"island": ["unreachable from the start step"]}


def test_seed_spellings_map_to_step_types():
    assert canonical_type("API_CALL") == "api_call"
    assert canonical_type("api") == "api_call"
    assert canonical_type("Condition") == "condition"


def test_inputs_are_checked_against_every_inputs_spec_at_once():
    p = plan({"id": "a", "inputsSpec": {"date": "date", "count": "integer"}},
             {"id": "b", "inputsSpec": {"flag": "boolean", "note": "string?", "x": "weird"}})
    problems = validate_inputs(p, {"date": "yesterday", "flag": "yes"}, "qa", 5)
    fields = {pr["field"]: pr["problem"] for pr in problems}
    assert fields == {
        "environment": "must be one of dev, test, stage, prod",
        "timeoutSec": "must be between 30 and 86400",
        "inputs.date": "must be date",
        "inputs.count": "required (integer)",
        "inputs.flag": "must be boolean",
        "inputsSpec.x": "unknown input type 'weird'",
    }
    assert validate_inputs(p, {"date": "2025-09-01", "count": 3, "flag": True, "x": 1},
                           "test", 60) == [{"field": "inputsSpec.x", "step_id": "b",
                                            "problem": "unknown input type 'weird'"}]


def test_step_types_registered_by_executors_are_known_and_their_config_is_checked():
    from pydantic import BaseModel, ConfigDict

    class SqlConfig(BaseModel):
        model_config = ConfigDict(extra="forbid")
        query: str

    p = Plan.model_validate({"steps": [{"id": "q", "type": "sql", "config": {"query": "1"}},
                                       {"id": "r", "type": "sql", "config": {"q": 1}}]})
    assert [x["step_id"] for x in validate_plan(p)] == ["q", "r"]  # unknown without it
    problems = validate_plan(p, {"sql": SqlConfig})
    assert {x["step_id"] for x in problems} == {"r"}
    assert any("config.query" in x["problem"] for x in problems)


def test_a_wait_input_schema_must_be_a_json_schema():
    p = Plan.model_validate({"steps": [
        {"id": "ok", "type": "wait_input", "config": {"input_schema": {"type": "object"}}},
        {"id": "bad", "type": "wait_input", "config": {"input_schema": {"type": "thing"}}}]})
    assert [x["step_id"] for x in validate_plan(p)] == ["bad"]
