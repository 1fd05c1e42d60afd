"""Log lines are JSON, and the lines a step executor logs while it runs a task (its own
and a crash) carry the task's execution id as a field."""

from __future__ import annotations

import json
import logging

import httpx
from pydantic import BaseModel

from runledger.logs import JsonFormatter, setup_logging
from streams.contracts import StepTask
from streams.executors.registry import ExecutorContext, Result
from streams.executors.runner import run_task

plugin_log = logging.getLogger("tests.plugin")


class _Config(BaseModel):
    pass


class _Noisy:
    """A plugin that logs without naming the execution, then crashes."""

    type = "noisy"
    config_model = _Config

    async def run(self, task: StepTask, ctx: ExecutorContext) -> Result:
        plugin_log.warning("calling the ledger")
        raise RuntimeError("boom")


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter("executor"))
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


async def test_an_executors_lines_carry_the_execution_id() -> None:
    lines = _Lines()
    root = logging.getLogger()
    root.addHandler(lines)
    try:
        task = StepTask(task_id="ex7/post/1", execution_id="ex7", step_id="post", attempt=1,
                        type="noisy", config={}, dispatched_at=0)  # fmt: skip
        async with httpx.AsyncClient() as http:
            result = await run_task({"noisy": _Noisy()}, task, ExecutorContext(http))
        plugin_log.warning("after the task")
    finally:
        root.removeHandler(lines)
    assert (result.ok, result.error_type) == (False, "ExecutorError")
    own, crash, after = lines.lines
    assert (own["msg"], own["execution_id"]) == ("calling the ledger", "ex7")
    assert crash["execution_id"] == "ex7" and crash["task_id"] == "ex7/post/1"
    assert "RuntimeError: boom" in str(crash["exc"])
    assert "execution_id" not in after


def test_fausts_per_batch_buffer_warning_is_not_logged_but_its_other_warnings_are() -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        setup_logging("INFO", "worker-0")
        assert not logging.getLogger("faust.transport.producer").isEnabledFor(logging.WARNING)
        assert logging.getLogger("faust.transport.consumer").isEnabledFor(logging.WARNING)
        assert logging.getLogger("faust.tables").isEnabledFor(logging.WARNING)
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in handlers:
            root.addHandler(h)
        root.setLevel(level)
