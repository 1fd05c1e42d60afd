"""The step-type registry as the API sees it (DESIGN.md "Plans"): the built-in types, the
executors installed as Python entry points (`runledger.step_executors`), and types
registered over HTTP (`POST /step-types`: a name, a config JSON Schema and the URL that
executes it), which are journaled and read back from ClickHouse (migration 7).

When an execution starts, each step of an HTTP-registered type gets that type's URL as
its ``endpoint`` (sub-executions' plans too), so it runs where its type pointed then.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from pydantic import BaseModel, ConfigDict, model_validator

from api.deps import AppContext
from projections import step_types
from streams.executors.registry import load_executors
from streams.plan import Plan, canonical_type
from streams.validation import STEP_CONFIGS

DESCRIPTIONS = {
    "api_call": "One HTTP request; output: status, data, headers and mapped keys.",
    "condition": "Evaluates an expression and runs true_path or false_path.",
    "delay": "Waits a number of seconds (a durable timer).",
    "parallel": "Runs its branches at once (max_concurrent, wait_for_all).",
    "loop": "Runs its body per item, or while a condition holds.",
    "transform": "Builds an object from templates over inputs and outputs.",
    "wait_input": "Waits for an answer (POST .../input) checked by a JSON Schema.",
    "sub_execution": "Runs a plan or a saved workflow as a child execution.",
    "start": "Where a workflow starts.",
    "end": "Where a workflow ends.",
    "external": "Run by another system and reported over POST /events.",
}
_CACHE_SECONDS = 5.0
_cache: dict[tuple[int, str], tuple[float, dict[str, dict[str, Any]]]] = {}


@functools.cache
def plugin_step_types() -> dict[str, type[BaseModel]]:
    """Step types that step executors declare as entry points, with their config models
    (read once per process: installing a plugin means restarting)."""
    return {name: ex.config_model for name, ex in load_executors().items()}


@functools.lru_cache(maxsize=1024)
def _schema_model(schema_json: str) -> type[BaseModel]:
    validator = Draft202012Validator(json.loads(schema_json))

    class SchemaConfig(BaseModel):
        model_config = ConfigDict(extra="allow")

        @model_validator(mode="before")
        @classmethod
        def _by_schema(cls, data: Any) -> Any:
            errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
            if errors:
                raise ValueError("; ".join(
                    f"{'.'.join(str(p) for p in e.path) or 'config'}: {e.message}"
                    for e in errors[:5]))  # fmt: skip
            return data

    return SchemaConfig


def schema_model(schema: Mapping[str, Any]) -> type[BaseModel]:
    """A config model that checks a step's config against a JSON Schema."""
    return _schema_model(json.dumps(schema, sort_keys=True))


def reserved(name: str) -> bool:
    """A built-in or entry-point type: HTTP registration may not take its name."""
    return name in STEP_CONFIGS or name in plugin_step_types()


async def http_types(ctx: AppContext, tenant: str) -> dict[str, dict[str, Any]]:
    """The HTTP-registered types by name (read at most every 5 s per API process and
    right after this process registers one)."""
    key = (id(ctx), tenant)
    hit = _cache.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    docs = await step_types.registered(ctx.ch, tenant, database=ctx.db)
    found = {d["name"]: d for d in docs if not reserved(d["name"])}
    _cache[key] = (time.monotonic() + _CACHE_SECONDS, found)
    return found


def forget(ctx: AppContext, tenant: str) -> None:
    _cache.pop((id(ctx), tenant), None)


async def known_types(ctx: AppContext, tenant: str) -> dict[str, type[BaseModel]]:
    """Every non-built-in type a plan may use, with the model that checks its config."""
    http = {name: schema_model(d["config_schema"]) for name, d in
            (await http_types(ctx, tenant)).items()}  # fmt: skip
    return {**http, **plugin_step_types()}


async def with_endpoints(ctx: AppContext, tenant: str, plan: Plan) -> Plan:
    """``plan`` with each step of an HTTP-registered type given that type's URL."""
    http = await http_types(ctx, tenant)
    return _resolved(plan, {name: d["url"] for name, d in http.items()}) if http else plan


def _resolved(plan: Plan, urls: dict[str, str]) -> Plan:
    steps = []
    for step in plan.steps:
        kind = canonical_type(step.type)
        if kind in urls:
            step = step.model_copy(update={"endpoint": urls[kind]})
        child = step.config.get("plan") if kind == "sub_execution" else None
        if isinstance(child, dict):
            inner = _resolved(Plan.model_validate(child), urls)
            step = step.model_copy(update={"config": {**step.config, "plan": inner.model_dump(
                mode="json", by_alias=True, exclude_none=True)}})  # fmt: skip
        steps.append(step)
    return plan.model_copy(update={"steps": tuple(steps)})


def listing(http: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every step type: name, where it comes from, description and config JSON Schema."""
    out = [{"type": name, "source": "builtin", "description": DESCRIPTIONS.get(name, ""),
            "config_schema": model.model_json_schema()}
           for name, model in sorted(STEP_CONFIGS.items())]  # fmt: skip
    out += [{"type": name, "source": "plugin", "description": (model.__doc__ or "").strip(),
             "config_schema": model.model_json_schema()}
            for name, model in sorted(plugin_step_types().items())
            if name not in STEP_CONFIGS]  # fmt: skip
    out += [{"type": name, "source": "http", **{k: d[k] for k in (
        "description", "config_schema", "url", "registered_at")}}
        for name, d in sorted(http.items())]  # fmt: skip
    return out
