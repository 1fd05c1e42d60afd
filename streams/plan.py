"""The plan contract: a DAG of steps (DESIGN.md "Plans" and "Plan contract")."""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

_ALIASES = {"api": "api_call", "wait": "wait_input", "sub_graph": "sub_execution",
            "subgraph": "sub_execution"}  # fmt: skip


def canonical_type(name: str) -> str:
    """`API_CALL`, `api`, `Api_Call` → `api_call` (seed 000 and 003 spellings)."""
    low = name.strip().lower()
    return _ALIASES.get(low, low)


class RetryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_retries: int = Field(default=0, ge=0, le=100)
    backoff_strategy: str = "exponential"
    initial_delay: float = Field(default=1.0, ge=0)
    max_delay: float = Field(default=60.0, ge=0)
    retryable_errors: tuple[str, ...] = ()


class PlanStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str = Field(min_length=1, max_length=200)
    type: str = "external"
    name: str | None = None
    system: str | None = None
    module: str | None = None
    depends_on: tuple[str, ...] = Field(default=(), alias="dependsOn")
    inputs_spec: dict[str, Any] = Field(default_factory=dict, alias="inputsSpec")
    config: dict[str, Any] = Field(default_factory=dict)
    retry: RetryPolicy | None = None
    timeout: float | None = None
    # The URL of an HTTP-backed step type registered over `POST /step-types`: set by the
    # API when the execution starts, so the step runs where its type pointed then.
    endpoint: str | None = Field(default=None, max_length=2000)

    @model_serializer(mode="wrap")
    def _without_unset_endpoint(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Plans recorded before endpoints existed serialize exactly as they did.
        out = handler(self)
        if isinstance(out, dict) and out.get("endpoint") is None:
            out.pop("endpoint", None)
        return out


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str | None = None
    name: str | None = None
    steps: tuple[PlanStep, ...] = Field(min_length=1, max_length=1000)
    estimated_duration_ms: int | None = None

    def step(self, step_id: str) -> PlanStep | None:
        for s in self.steps:
            if s.id == step_id:
                return s
        return None


def plan_problems(plan: Plan) -> list[dict[str, str]]:
    """Structural problems of a plan, each naming the step it concerns (empty = valid)."""
    problems: list[dict[str, str]] = []
    ids = [s.id for s in plan.steps]
    seen: set[str] = set()
    for sid in ids:
        if sid in seen:
            problems.append({"step_id": sid, "problem": "duplicate step id"})
        seen.add(sid)
    for s in plan.steps:
        for dep in s.depends_on:
            if dep not in seen:
                problems.append({"step_id": s.id, "problem": f"dependsOn unknown step {dep!r}"})
    cycle = _find_cycle(plan)
    if cycle:
        problems.append(
            {"step_id": cycle[0], "problem": "dependency cycle: " + " -> ".join(cycle)}
        )
    return problems


def _find_cycle(plan: Plan) -> list[str]:
    deps = {s.id: [d for d in s.depends_on] for s in plan.steps}
    state: dict[str, int] = {}  # 1 = on stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in deps.get(node, []):
            if nxt not in deps:
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for sid in deps:
        if state.get(sid) is None:
            found = visit(sid)
            if found:
                return found
    return []
