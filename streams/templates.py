"""Templates and conditions in Jinja2's sandbox (DESIGN.md "Plans"), never `eval`.

- Templates: ``{{ input.date }}``, ``{{ steps.fetch.output.id }}``, the shorter
  ``{{ fetch.id }}``, ``{{ loop.index }}``, ``{{ execution.id }}``. A string that is one
  expression and nothing else keeps the value's type (``"{{ fetch.count }}"`` → 3).
- Conditions: comparisons, ``and``/``or``/``not``, ``is null``, ``is empty``,
  ``contains``; written bare (``steps.fetch.output.data.count >= 1``) or wrapped in
  ``{{ }}`` (also inside: ``"{{input.score}} >= 60"`` means ``input.score >= 60``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import ChainableUndefined, TemplateError, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from streams.secrets import SecretMarkers


class ExpressionError(ValueError):
    """A template or condition that cannot be parsed or evaluated."""


def _is_null(value: Any) -> bool:
    return value is None or isinstance(value, Undefined)


def _is_empty(value: Any) -> bool:
    return _is_null(value) or (hasattr(value, "__len__") and len(value) == 0)


class _JsonSandbox(ImmutableSandboxedEnvironment):
    """Dot access on a mapping reads its keys only: with JSON data, `data.items` is the
    key "items", not the dict method (Jinja tries attributes first)."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


_env = _JsonSandbox(undefined=ChainableUndefined, autoescape=False)
_env.tests["null"] = _is_null
_env.tests["empty"] = _is_empty
# Compiling is most of a template's cost and plans repeat the same few thousand strings.
# A compile error is not cached: it raises again, as cheaply as it came.
_expression: Callable[[str], Any] = functools.lru_cache(maxsize=8192)(
    functools.partial(_env.compile_expression, undefined_to_none=True))
_template = functools.lru_cache(maxsize=8192)(_env.from_string)
_WRAPPED = re.compile(r"\{\{\s*(.*?)\s*\}\}", re.S)
_ONLY_ONE = re.compile(r"^\s*\{\{\s*(.*?)\s*\}\}\s*$", re.S)
_OPERAND = r"""(?:"[^"]*"|'[^']*'|[\w.\[\]'"]+)"""
_CONTAINS = re.compile(rf"({_OPERAND})\s+(not\s+)?contains\s+({_OPERAND})")


def context(
    inputs: Mapping[str, Any], outputs: Mapping[str, Any], execution_id: str,
    loop: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The names a template sees; each step's output is also reachable by its id."""
    ctx: dict[str, Any] = {sid: out for sid, out in outputs.items()}
    ctx.update(input=dict(inputs), inputs=dict(inputs),
               steps={sid: {"output": out} for sid, out in outputs.items()},
               execution={"id": execution_id}, loop=dict(loop or {}),
               secrets=SecretMarkers())  # resolved by the executor (streams/secrets.py)
    return ctx


def render(value: Any, ctx: Mapping[str, Any]) -> Any:
    """Render every string inside ``value`` (dicts and lists recursively)."""
    if isinstance(value, str):
        return _render_str(value, ctx)
    if isinstance(value, dict):
        return {k: render(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, ctx) for v in value]
    return value


def _render_str(text: str, ctx: Mapping[str, Any]) -> Any:
    if "{{" not in text and "{%" not in text:
        return text
    try:
        whole = _ONLY_ONE.match(text)
        if whole and "}}" not in whole.group(1):
            result = _expression(whole.group(1))(**ctx)
            return result
        return _template(text).render(**ctx)
    except (TemplateError, TypeError, ValueError, AttributeError, ArithmeticError,
            LookupError) as exc:
        raise ExpressionError(f"template {text!r}: {exc}") from exc


def to_jinja(expression: str) -> str:
    """DESIGN's condition syntax as a Jinja expression."""
    expr = _WRAPPED.sub(lambda m: f"({m.group(1)})", expression.strip())
    expr = re.sub(r"\bis\s+not\s+(null|empty)\b", r"is not \1", expr)

    def contains(m: re.Match[str]) -> str:
        return f"({m.group(3)} {'not in' if m.group(2) else 'in'} {m.group(1)})"

    return _CONTAINS.sub(contains, expr)


def check_condition(expression: str) -> None:
    """Raise ExpressionError when ``expression`` does not parse."""
    try:
        _expression(to_jinja(expression))
    except TemplateError as exc:
        raise ExpressionError(f"condition {expression!r}: {exc}") from exc


def evaluate(expression: str, ctx: Mapping[str, Any]) -> bool:
    """Evaluate a condition to a bool; an error names the expression."""
    try:
        result = _expression(to_jinja(expression))(**ctx)
    except (TemplateError, TypeError, ValueError, AttributeError, ArithmeticError,
            LookupError) as exc:
        raise ExpressionError(f"condition {expression!r}: {exc}") from exc
    return bool(result)
