"""Templates and conditions run in Jinja2's sandbox with DESIGN's syntax."""

from __future__ import annotations

import pytest

from streams.templates import ExpressionError, check_condition, context, evaluate, render

CTX = context({"date": "2025-09-01", "score": 75, "tags": ["vip", "eu"]},
              {"fetch": {"status": 200, "data": {"count": 3, "items": []}, "id": "o-1"}},
              "exec_1", {"index": 2, "item": {"sku": "A"}})


def test_templates_render_inputs_steps_short_names_loop_and_execution():
    assert render("http://erp/orders?date={{ input.date }}", CTX) == (
        "http://erp/orders?date=2025-09-01")
    assert render("{{ steps.fetch.output.id }}/{{ fetch.id }}", CTX) == "o-1/o-1"
    assert render({"n": "{{ fetch.data.count }}", "i": ["{{ loop.index }}"]}, CTX) == {
        "n": 3, "i": [2]}  # a lone expression keeps its type
    assert render("{{ execution.id }}-{{ loop.item.sku }}", CTX) == "exec_1-A"
    assert render("no template", CTX) == "no template"


@pytest.mark.parametrize(("expression", "expected"), [
    ("steps.fetch.output.data.count >= 1", True),
    ("{{ steps.fetch.output.data.count >= 1 }}", True),
    ("{{input.score}} >= 60", True),
    ("input.score >= 60 and not (fetch.status != 200)", True),
    ("input.score < 60 or fetch.data.count == 0", False),
    ("fetch.data.items is empty", True),
    ("fetch.data.items is not empty", False),
    ("fetch.data.missing is null", True),
    ("fetch.data.count is not null", True),
    ("input.tags contains 'vip'", True),
    ("input.tags not contains 'us'", True),
    ("fetch.id contains \"o-\"", True),
])
def test_conditions(expression: str, expected: bool):
    assert evaluate(expression, CTX) is expected


def test_the_sandbox_refuses_reaching_into_python():
    with pytest.raises(ExpressionError):
        evaluate("fetch.__class__.__mro__[1].__subclasses__()", CTX)
    with pytest.raises(ExpressionError):
        render("{{ ''.__class__.__base__.__subclasses__() }}", CTX)


def test_bad_conditions_are_clear_errors():
    with pytest.raises(ExpressionError, match="condition"):
        check_condition("input.score >=")
    with pytest.raises(ExpressionError):
        evaluate("fetch.data.count > 'x'", CTX)
