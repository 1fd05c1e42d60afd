"""Control commands from HTTP and the WebSocket: journal, append, and answer with the
worker's verdict (DESIGN.md "Control verdicts"): 200 with the new status, 409 with a
reason code (422 for an input its step's schema refuses), or 202 with the command id
past `RUNLEDGER_COMMAND_WAIT` (its outcome is then at `GET /api/v1/commands/{id}`)."""

from __future__ import annotations

from typing import Any

from api.accept import accept
from api.deps import AppContext
from api.envelope import ApiError
from projections.journal import Entry
from streams.contracts import ControlCommand, FinishExecution, StartExecution, StopExecution

Command = StartExecution | FinishExecution | StopExecution | ControlCommand


def entry_for(ctx: AppContext, action: str, cmd: Command) -> Entry:
    return Entry(action=action, execution_id=cmd.execution_id, ids=(cmd.command_id,),
                 topic=ctx.settings.topic("commands"), payload=cmd.model_dump_json().encode(),
                 received_at=cmd.received_at, tenant=cmd.tenant, actor=cmd.actor)


def rejection_status(reason: str) -> int:
    """The HTTP status of a command the worker refused: 422 for an input its step's schema
    refuses, else 409 (the execution is not in a state the command applies to)."""
    return 422 if reason == "invalid_input" else 409


async def submit(ctx: AppContext, action: str, cmd: Command) -> tuple[dict[str, Any], int]:
    """The answer body and HTTP status for ``cmd``; ApiError when the worker refused it."""
    await append(ctx, action, cmd)
    return await answer(ctx, action, cmd)


async def append(ctx: AppContext, action: str, cmd: Command) -> None:
    """Journal and append ``cmd``, its verdict awaited from the tail (``answer``).
    Commands appended one after another reach the worker in that order."""
    ctx.tail.expect(cmd.command_id)
    await accept(ctx, [entry_for(ctx, action, cmd)])


async def answer(ctx: AppContext, action: str, cmd: Command) -> tuple[dict[str, Any], int]:
    """The worker's verdict on the appended ``cmd``, as ``submit`` returns it."""
    verdict = await ctx.tail.verdict(cmd.command_id, ctx.settings.command_wait)
    body: dict[str, Any] = {"execution_id": cmd.execution_id, "command_id": cmd.command_id}
    if verdict is None:
        return {**body, "status": "accepted"}, 202
    data = verdict["data"]
    if verdict["event_type"] == "command_rejected":
        reason = data.get("reason", "rejected")
        if rejection_status(reason) == 422:
            raise ApiError(422, reason, verdict["message"], details=data.get("problems", []))
        raise ApiError(409, reason, verdict["message"],
                       details=[{"command_id": cmd.command_id, **data}])
    body["status"] = data.get("status") or ("paused" if action == "step" else "running")
    if "stopped_at_steps" in data:
        body["stopped_at_steps"] = data["stopped_at_steps"]
    if verdict.get("step_id"):
        body["step_id"] = verdict["step_id"]
    return body, 200
