"""The seeds' words (api/routes/seed_paths.py): seed 001's status and log words, seed
000's bare plan and environment among the inputs."""

from __future__ import annotations

import pytest

from api.routes.seed_paths import bare_plan, lift_environment, seed_levels, status_of

# Ours → seed 001's (`pending, running, paused, completed, failed, stopped`).
WORDS = {"pending": "pending", "running": "running", "paused": "paused",
         "succeeded": "completed", "failed": "failed", "stopped": "stopped"}  # fmt: skip


@pytest.mark.parametrize(("ours", "theirs"), sorted(WORDS.items()))
def test_every_execution_status_has_seed_001s_word(ours: str, theirs: str):
    detail = {"execution_id": "e1", "status": ours, "progress": 0.5, "message": "m",
              "current_steps": ["b", "c"], "steps": [], "last_seq": 9}  # fmt: skip
    assert status_of(detail) == {"execution_id": "e1", "status": theirs, "current_node": "b",
                                 "progress": 0.5, "message": "m"}  # fmt: skip


def test_status_of_an_execution_not_projected_yet():
    pending = {"execution_id": "e1", "status": "pending", "progress": 0.0, "projected": False}
    assert status_of(pending) == {"execution_id": "e1", "status": "pending",
                                  "current_node": None, "progress": 0.0, "message": None}
    done = {"execution_id": "e1", "status": "succeeded", "progress": 1.0, "message": "",
            "current_steps": []}  # fmt: skip
    assert status_of(done)["current_node"] is None and status_of(done)["message"] is None


def test_log_levels_read_warning_for_warn_and_nothing_else_changes():
    lines = [{"seq": n, "level": level, "message": level}
             for n, level in enumerate(("info", "warn", "error"))]  # fmt: skip
    logs = {"items": lines, "next_cursor": None}
    assert seed_levels(logs) == {"next_cursor": None, "items": [
        {"seq": 0, "level": "info", "message": "info"},
        {"seq": 1, "level": "warning", "message": "warn"},
        {"seq": 2, "level": "error", "message": "error"}]}  # fmt: skip
    assert lines[1]["level"] == "warn"  # the canonical answer is not changed in place


def test_a_bare_plan_is_wrapped_and_anything_else_left_alone():
    plan = {"id": "plan_001", "steps": [{"id": "a", "type": "api"}]}
    assert bare_plan(plan) == {"plan": plan}
    for body in ({"plan": plan}, {"plan": plan, "steps": []}, {}, [], "x", None):
        assert bare_plan(body) is body


def test_environment_among_the_inputs_is_the_executions_unless_given():
    seed = {"inputs": {"environment": "test", "date": "2025-09-01", "retry": 0}}
    assert lift_environment(seed) == {**seed, "environment": "test"}
    for body in ({**seed, "environment": "prod"}, {"inputs": {"date": "x"}},
                 {"inputs": "x"}, {}, [1], None):  # fmt: skip
        assert lift_environment(body) is body
