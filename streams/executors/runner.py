"""Running one task with whatever executor its type names, and the updates to report.

Whatever goes wrong inside becomes a failed ``Result``: an unknown type, a config the
executor's model rejects, or an executor bug. Nothing here raises for a task's sake.
"""

from __future__ import annotations

import logging
import time

from pydantic import ValidationError

from runledger.logs import execution_context
from streams import secrets
from streams.contracts import StepTask, TaskUpdate
from streams.executors.http_step import HttpBackedExecutor
from streams.executors.registry import Executor, ExecutorContext, Result

log = logging.getLogger(__name__)
HTTP_BACKED = HttpBackedExecutor()  # step types registered over HTTP (their tasks' endpoint)


async def run_task(executors: dict[str, Executor], task: StepTask, ctx: ExecutorContext) -> Result:
    """Run ``task`` with the executor of its type; every failure comes back as a Result."""
    executor = executors.get(task.type)
    if executor is None and task.endpoint:
        executor = HTTP_BACKED
    if executor is None:
        known = ", ".join(sorted(executors)) or "none"
        return Result.failure(f"no executor for step type {task.type!r} (known: {known})",
                              "UnknownStepType", False)  # fmt: skip
    used: dict[str, str] = {}
    if task.secret_refs:
        config, used, missing = secrets.resolve(task.config, task.secret_refs, ctx.secrets.get)
        if missing:
            return Result.failure(f"secret(s) not set for this executor: {', '.join(missing)} "
                                  f"(RUNLEDGER_SECRET_<NAME> or RUNLEDGER_SECRETS_FILE)",
                                  "SecretMissing", False)  # fmt: skip
        task = task.model_copy(update={"config": config})
    try:
        executor.config_model.model_validate(task.config)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}"
                             for e in exc.errors())  # fmt: skip
        return _scrubbed(Result.failure(f"invalid config: {problems}", "InvalidConfig", False),
                         used)  # fmt: skip
    with execution_context(task.execution_id):  # the executor's own log lines name it
        try:
            return _scrubbed(await executor.run(task, ctx), used)
        except Exception as exc:  # an executor bug must fail the step, not the process
            why = secrets.scrub(f"executor error: {exc!r}", used)[:500]
            if used:  # a traceback could quote a secret: the scrubbed line only
                log.error("executor %s crashed: %s", task.type, why,
                          extra={"task_id": task.task_id})  # fmt: skip
            else:
                log.exception("executor %s crashed", task.type, extra={"task_id": task.task_id})
            return Result.failure(why, "ExecutorError", False)


def _scrubbed(result: Result, used: dict[str, str]) -> Result:
    """``result`` with the values of the secrets this call used masked everywhere."""
    if not used:
        return result
    return Result(output=secrets.scrub(result.output, used),
                  error=secrets.scrub(result.error, used), error_type=result.error_type,
                  retryable=result.retryable, logs=secrets.scrub(result.logs, used))


def now_ms() -> int:
    return int(time.time() * 1000)


def started_update(task: StepTask, received_at: int) -> TaskUpdate:
    return TaskUpdate(execution_id=task.execution_id, tenant=task.tenant,
                      received_at=received_at, task_id=task.task_id, step_id=task.step_id,
                      attempt=task.attempt, phase="started")  # fmt: skip


def finished_update(
    task: StepTask, result: Result, received_at: int, started_at: int | None = None
) -> TaskUpdate:
    return TaskUpdate(
        execution_id=task.execution_id, tenant=task.tenant, received_at=received_at,
        task_id=task.task_id, step_id=task.step_id, attempt=task.attempt,
        phase="succeeded" if result.ok else "failed",
        output=result.output if result.ok else None,
        error=result.error, error_type=result.error_type,
        retryable=result.retryable if not result.ok else False, logs=result.logs,
        started_at=started_at,
    )  # fmt: skip
