"""A plug-in as a third party would ship one: a step executor and a hook, declared as
entry points in ``runledger_test_plugin-0.1.dist-info/entry_points.txt`` (found when this
directory is on the product's PYTHONPATH)."""

from __future__ import annotations

import json
import os
from typing import Any

from pydantic import BaseModel, ConfigDict

from streams.contracts import StepTask
from streams.executors.registry import ExecutorContext, Result


class ShoutConfig(BaseModel):
    """Upper-cases a text."""

    model_config = ConfigDict(extra="forbid")

    text: str


class ShoutExecutor:
    type = "shout"
    config_model = ShoutConfig

    async def run(self, task: StepTask, ctx: ExecutorContext) -> Result:
        config = ShoutConfig.model_validate(task.config)
        return Result.success({"text": config.text.upper()}, (f"shouted {len(config.text)}",))


class RecordingHook:
    """Writes each call as a JSON line to $RUNLEDGER_TEST_HOOK_LOG (seed 003's names)."""

    def _write(self, **line: Any) -> None:
        path = os.environ.get("RUNLEDGER_TEST_HOOK_LOG")
        if path:
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")

    async def before_execution(self, workflow_id: str | None, input_data: dict) -> None:
        self._write(hook="before_execution", workflow_id=workflow_id, input_data=input_data)

    async def after_execution(self, execution_id: str, result: dict) -> None:
        self._write(hook="after_execution", execution_id=execution_id,
                    status=result.get("status"))

    async def on_node_execution(self, node_id: str, context: dict) -> None:
        self._write(hook="on_step", step_id=node_id, execution_id=context["execution_id"],
                    event_type=context["event_type"])
