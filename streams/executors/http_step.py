"""Step types registered over HTTP (`POST /api/v1/step-types`): the step's task is POSTed
to the URL its type named when the execution started (the task's ``endpoint``).

The service gets ``{"task_id", "execution_id", "step_id", "attempt", "type", "config"}``
(config rendered) with ``Idempotency-Key: <task_id>``, and answers with the step's output
as a JSON object (anything else is ``{"result": <body>}``). The call is an ``api_call``
underneath: same timeouts, failure classes, retries and circuit breaker per host.
"""

from __future__ import annotations

import builtins
from typing import Any

from pydantic import BaseModel, ConfigDict

from streams.contracts import StepTask
from streams.executors.api_call import ApiCallExecutor
from streams.executors.registry import ExecutorContext, Result


class AnyConfig(BaseModel):
    """The API checked the config against the type's JSON Schema before the start."""

    model_config = ConfigDict(extra="allow")


class HttpBackedExecutor:
    type: str = "http_backed"
    config_model: builtins.type[BaseModel] = AnyConfig  # `type` is the attribute above

    def __init__(self) -> None:
        self._call = ApiCallExecutor()

    async def run(self, task: StepTask, ctx: ExecutorContext) -> Result:
        if not task.endpoint:
            return Result.failure(f"step type {task.type!r} has no endpoint",
                                  "UnknownStepType", False)  # fmt: skip
        body = {"task_id": task.task_id, "execution_id": task.execution_id,
                "step_id": task.step_id, "attempt": task.attempt, "type": task.type,
                "config": task.config}  # fmt: skip
        call = task.model_copy(update={"config": {"method": "POST", "url": task.endpoint,
                                                  "body": body}})  # fmt: skip
        result = await self._call.run(call, ctx)
        if not result.ok or result.output is None:
            return result
        data: Any = result.output.get("data")
        output = data if isinstance(data, dict) else {"result": data}
        return Result.success(output, result.logs)
