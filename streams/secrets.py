"""Secrets in plans: ``{{ secrets.NAME }}``, resolved by the step executor when it runs the
step, never by the worker (pure: no I/O here).

The worker renders a reference as a marker (``\\ue000secret:NAME\\ue001``) and lists, per
config string, the names that string's own template refers to (``StepTask.secret_refs``).
The executor puts a value in place of a marker only there and only for those names, so
data that merely looks like a marker (an input, an earlier step's output) can never pull
a secret into a call. What an executor reports (output, error, log lines) is scrubbed of
every value it put in, so neither a secret nor a marker's value reaches the events, the
journal, ClickHouse, logs or exports.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_REFERENCE = re.compile(rf"\bsecrets\s*\.\s*({NAME})|\bsecrets\s*\[\s*['\"]({NAME})['\"]\s*\]")
_MARKER = re.compile(rf"\ue000secret:({NAME})\ue001")
MASK = "***"


def marker(name: str) -> str:
    return f"\ue000secret:{name}\ue001"


class SecretMarkers(dict[str, str]):
    """What ``secrets`` is to a template in the worker: any name reads as its marker."""

    def __missing__(self, name: str) -> str:
        return marker(name)


def references(config: Any, path: str = "") -> dict[str, list[str]]:
    """Per config string (its path, keys joined by ``.``, list items by index), the
    secret names its template refers to, in order of first use."""
    found: dict[str, list[str]] = {}
    if isinstance(config, str):
        if "secrets" in config and "{{" in config:
            names = [a or b for a, b in _REFERENCE.findall(config)]
            if names:
                found[path] = list(dict.fromkeys(names))
    elif isinstance(config, dict):
        for k, v in config.items():
            found.update(references(v, f"{path}.{k}" if path else str(k)))
    elif isinstance(config, list):
        for i, v in enumerate(config):
            found.update(references(v, f"{path}.{i}" if path else str(i)))
    return found


def resolve(config: Any, refs: Mapping[str, list[str]], lookup: Callable[[str], str | None],
            path: str = "") -> tuple[Any, dict[str, str], list[str]]:  # fmt: skip
    """``config`` with the markers at ``refs`` replaced by their values; the values used
    (name → value) and the names ``lookup`` did not know."""
    used: dict[str, str] = {}
    missing: list[str] = []

    def walk(value: Any, at: str) -> Any:
        if isinstance(value, str):
            allowed = refs.get(at)
            if not allowed or "\ue000" not in value:
                return value

            def put(m: re.Match[str]) -> str:
                name = m.group(1)
                if name not in allowed:
                    return m.group(0)  # not this string's own reference: left as it is
                secret = lookup(name)
                if secret is None:
                    missing.append(name)
                    return m.group(0)
                used[name] = secret
                return secret

            return _MARKER.sub(put, value)
        if isinstance(value, dict):
            return {k: walk(v, f"{at}.{k}" if at else str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, f"{at}.{i}" if at else str(i)) for i, v in enumerate(value)]
        return value

    return walk(config, path), used, sorted(set(missing))


def scrub(value: Any, secrets: Mapping[str, str]) -> Any:
    """``value`` with every occurrence of a used secret's value as ``***`` (recursively;
    keys too)."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in sorted(secrets.values(), key=len, reverse=True):
            if secret:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(scrub(v, secrets) for v in value)
    return value


def shown(value: Any) -> Any:
    """Markers as the plan wrote them (``{{ secrets.NAME }}``), for what a person reads."""
    if isinstance(value, str):
        return _MARKER.sub(lambda m: "{{ secrets." + m.group(1) + " }}", value)
    if isinstance(value, dict):
        return {k: shown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shown(v) for v in value]
    return value
