"""Secrets (pure parts and the executor's runner): the worker only ever holds markers,
the executor resolves a string's own references only, and what it reports is scrubbed."""

from __future__ import annotations

import httpx
from pydantic import BaseModel, ConfigDict

from streams import secrets
from streams.contracts import StepTask
from streams.executors.registry import ExecutorContext, Result
from streams.executors.runner import run_task
from streams.steps import resolved_input
from tests.unit.runs import Run, plan, start

TOKEN = "s3cr3t-value-42"
PLAN = plan({"id": "call", "type": "api_call", "config": {
    "url": "http://erp/orders?q={{ input.q }}",
    "headers": {"Authorization": "Bearer {{ secrets.TOKEN }}"},
    "body": {"note": "{{ input.note }}", "keys": ["{{ secrets['TOKEN'] }}", "plain"]}}})


def test_the_worker_renders_markers_and_lists_each_strings_own_references():
    forged = secrets.marker("TOKEN")  # an input that looks like a reference
    r = Run()(start(PLAN, q="x", note=forged))
    [task] = r.tasks
    assert task.secret_refs == {"headers.Authorization": ["TOKEN"], "body.keys.0": ["TOKEN"]}
    assert task.config["headers"]["Authorization"] == "Bearer " + secrets.marker("TOKEN")
    assert TOKEN not in task.model_dump_json()
    assert r.state is not None
    shown = resolved_input(r.state, PLAN.steps[0], "call")  # what debug shows
    assert shown["body"]["keys"][0] == "{{ secrets.TOKEN }}"


def test_only_a_strings_own_references_are_resolved():
    config = {"a": "Bearer " + secrets.marker("TOKEN"),
              "b": secrets.marker("TOKEN"),  # data that looks like a reference
              "c": secrets.marker("OTHER") + secrets.marker("TOKEN")}
    refs = {"a": ["TOKEN"], "c": ["TOKEN"]}
    lookup = {"TOKEN": TOKEN, "OTHER": "other-secret"}.get
    out, used, missing = secrets.resolve(config, refs, lookup)
    assert out == {"a": f"Bearer {TOKEN}", "b": secrets.marker("TOKEN"),
                   "c": secrets.marker("OTHER") + TOKEN}
    assert used == {"TOKEN": TOKEN} and missing == []
    assert secrets.resolve({"a": secrets.marker("NOPE")}, {"a": ["NOPE"]}, lookup)[2] == ["NOPE"]


def test_references_by_path_and_scrubbing():
    assert secrets.references({"h": {"x": "{{ secrets.A }}-{{ secrets.B }}-{{ secrets.A }}"},
                               "l": ["no", "{{ secrets['C'] }}"], "n": 3}) == {
        "h.x": ["A", "B"], "l.1": ["C"]}
    assert secrets.scrub({"k": [f"x{TOKEN}y", ("t", TOKEN)], TOKEN: 1}, {"T": TOKEN}) == {
        "k": ["x***y", ("t", "***")], "***": 1}


class EchoConfig(BaseModel):
    model_config = ConfigDict(extra="allow")


class Echo:
    """Reports back everything it was given, as a careless plug-in might."""

    type = "echo"
    config_model = EchoConfig

    async def run(self, task: StepTask, ctx: ExecutorContext) -> Result:
        if task.config.get("crash"):
            raise RuntimeError(f"boom with {task.config['crash']}")
        return Result.success({"seen": task.config}, (f"called with {task.config}",))


class Store:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, name: str) -> str | None:
        return self.values.get(name)


async def test_the_executor_resolves_then_scrubs_what_it_reports():
    async with httpx.AsyncClient() as http:
        ctx = ExecutorContext(http, secrets=Store({"TOKEN": TOKEN}))  # type: ignore[arg-type]
        r = Run()(start(plan({"id": "s", "type": "api_call", "config": {
            "url": "http://x", "headers": {"Authorization": "Bearer {{ secrets.TOKEN }}"}}})))
        t = r.tasks[0].model_copy(update={"type": "echo"})
        result = await run_task({"echo": Echo()}, t, ctx)  # type: ignore[dict-item]
        assert result.ok and result.output is not None
        assert result.output["seen"]["headers"]["Authorization"] == "Bearer ***"
        assert TOKEN not in repr(result)
        crashed = await run_task({"echo": Echo()}, t.model_copy(update={  # type: ignore[dict-item]
            "config": {"crash": secrets.marker("TOKEN")}, "secret_refs": {"crash": ["TOKEN"]}}),
            ctx)  # fmt: skip
        assert crashed.error_type == "ExecutorError" and TOKEN not in (crashed.error or "")
        missing = await run_task({"echo": Echo()}, t.model_copy(update={  # type: ignore[dict-item]
            "secret_refs": {"headers.Authorization": ["TOKEN"]}}),
            ExecutorContext(http, secrets=Store({})))  # type: ignore[arg-type]
        assert (missing.error_type, missing.retryable) == ("SecretMissing", False)
        assert "TOKEN" in (missing.error or "")
