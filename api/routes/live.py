"""`WS /ws/v1/executions/{id}`: history after `after_seq`, then live events, in seq order.

The subscriber is registered for live events before history is read, so nothing falls
between the two; anything at or below the last sent seq is dropped, and a gap makes it
read history again until the gap is filled. Clients may switch executions on the same
socket with `{"type": "subscribe", "execution_id", "after_seq"?}` and stop with
`{"type": "unsubscribe"}`; heartbeats carry the last seq sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from api.control import answer, append
from api.deps import AppContext, new_id, now_ms
from api.envelope import ApiError
from api.history import merged_history
from api.routes.executions import detail_or_pending
from runledger.metrics import WS_SUBSCRIBERS
from streams.contracts import ControlCommand
from streams.executors.masking import mask_event

router = APIRouter(tags=["live"])
GAP_RETRY_S = 0.25
_CLIENT = "__client__"


class _Stream:
    """One execution's frames on one socket: in seq order, each once."""

    def __init__(self, ws: WebSocket, ctx: AppContext, eid: str, after_seq: int,
                 tenant: str | None = None) -> None:  # fmt: skip
        self.ws, self.ctx, self.eid, self.tenant = ws, ctx, eid, tenant
        self.last = max(after_seq, 0)
        self.held: dict[int, dict[str, Any]] = {}
        self.completed = False

    async def offer(self, events: list[dict[str, Any]]) -> None:
        for ev in events:
            if ev["seq"] > self.last:
                self.held.setdefault(ev["seq"], ev)
        while self.last + 1 in self.held:
            ev = self.held.pop(self.last + 1)
            if self.tenant is None or ev.get("tenant", "default") == self.tenant:
                await self.ws.send_json(mask_event(ev, self.ctx.masker()))
            self.last = ev["seq"]
            if ev["event_type"] == "execution_completed":
                self.completed = True

    async def refill(self) -> None:
        await self.offer(await merged_history(self.ctx, self.eid, self.last))


@router.websocket("/ws/v1/executions/{execution_id}")
async def tail_execution(ws: WebSocket, execution_id: str, after_seq: int = 0,
                         follow: bool = False) -> None:  # fmt: skip
    ctx: AppContext = ws.app.state.ctx
    principal = ws.scope.get("state", {}).get("principal")  # with API keys (api/auth.py)
    tenant = principal.tenant if principal is not None else None
    await ws.accept()
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    stream: _Stream | None = None
    pending: set[asyncio.Task[None]] = set()  # send_input answers being waited for
    reader = asyncio.create_task(_read_client(ws, inbox))
    heartbeat = ctx.settings.ws_heartbeat_interval

    async def switch(eid: str | None, after: int = 0) -> _Stream | None:
        if stream is not None:
            ctx.tail.unsubscribe(stream.eid, inbox)
        if eid is None:
            return None
        if tenant is not None:  # another tenant's execution is as good as unknown
            try:
                await detail_or_pending(ctx, eid, tenant)
            except ApiError as exc:
                await ws.send_json({"type": "error", "category": exc.category,
                                    "code": exc.code, "message": exc.message})  # fmt: skip
                return None
        ctx.tail.subscribe(eid, inbox)  # live first, then history: nothing falls between
        new = _Stream(ws, ctx, eid, after, tenant)
        await new.refill()
        return new

    WS_SUBSCRIBERS.inc()
    try:
        stream = await switch(execution_id, after_seq)
        next_beat = time.monotonic() + heartbeat
        while not reader.done():
            if stream is not None and stream.completed and not follow:
                await ws.close(code=1000)
                break
            wait = GAP_RETRY_S if stream and stream.held else max(next_beat - time.monotonic(),
                                                                  0.01)  # fmt: skip
            try:
                item = await asyncio.wait_for(inbox.get(), wait)
            except TimeoutError:
                item = None
            if item is not None and _CLIENT in item and reader.done():
                break  # the client went away
            if item is not None and _CLIENT in item:
                stream = await _on_client(ws, ctx, item[_CLIENT], stream, switch, pending)
            elif item is not None and stream is not None and item["execution_id"] == stream.eid:
                await stream.offer([item])
            if stream is not None and stream.held:
                await stream.refill()
            if time.monotonic() >= next_beat:
                await ws.send_json({"event_type": "heartbeat",
                                    "execution_id": stream.eid if stream else None,
                                    "last_seq": stream.last if stream else None,
                                    "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                               time.gmtime())})  # fmt: skip
                next_beat = time.monotonic() + heartbeat
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        WS_SUBSCRIBERS.dec()
        if stream is not None:
            ctx.tail.unsubscribe(stream.eid, inbox)
        reader.cancel()
        for task in pending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


async def _on_client(
    ws: WebSocket, ctx: AppContext, msg: Any, stream: _Stream | None, switch: Any,
    pending: set[asyncio.Task[None]],
) -> Any:  # fmt: skip
    kind = msg.get("type") if isinstance(msg, dict) else None
    if kind == "subscribe" and isinstance(msg.get("execution_id"), str):
        after = msg.get("after_seq", 0)
        return await switch(msg["execution_id"], after if isinstance(after, int) else 0)
    if kind == "unsubscribe":
        return await switch(None)
    if kind == "send_input" and isinstance(msg.get("step_id"), str) and stream is not None:
        # Appended here, in the order the client sent them; each verdict is awaited in its
        # own task: it may take seconds, live events go on.
        cmd = _input_command(ws, stream.eid, msg)
        try:
            await append(ctx, "input", cmd)
        except ApiError as exc:
            await ws.send_json(_error_frame(exc, cmd))
            return stream
        task = asyncio.create_task(_send_verdict(ws, ctx, cmd))
        pending.add(task)
        task.add_done_callback(pending.discard)
        return stream
    reason = ("send_input needs a subscribed execution and a step_id" if kind == "send_input"
              else "expected {'type': 'subscribe', 'execution_id': …}, {'type': 'unsubscribe'} "
              "or {'type': 'send_input', 'step_id': …, 'data': …}")  # fmt: skip
    await ws.send_json({"type": "error", "category": "validation", "message": reason})
    return stream


def _input_command(ws: WebSocket, eid: str, msg: dict[str, Any]) -> ControlCommand:
    """`send_input` is `POST …/input`: the same command, the same verdict, as a frame."""
    principal = ws.scope.get("state", {}).get("principal")
    return ControlCommand(execution_id=eid, received_at=now_ms(), action="input",
                          tenant=principal.tenant if principal is not None else "default",
                          command_id=new_id("cmd"), step_id=msg["step_id"],
                          data=msg.get("data"))  # fmt: skip


def _error_frame(exc: ApiError, cmd: ControlCommand) -> dict[str, Any]:
    return {"type": "error", "category": exc.category, "code": exc.code,
            "message": exc.message, "details": exc.details, "step_id": cmd.step_id}


async def _send_verdict(ws: WebSocket, ctx: AppContext, cmd: ControlCommand) -> None:
    try:
        body, _ = await answer(ctx, "input", cmd)
        frame: dict[str, Any] = {"type": "input_result", **body, "step_id": cmd.step_id}
    except ApiError as exc:
        frame = _error_frame(exc, cmd)
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await ws.send_json(frame)


async def _read_client(ws: WebSocket, inbox: asyncio.Queue[dict[str, Any]]) -> None:
    """Client frames go to the socket's inbox; ends when the client goes away."""
    try:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                text = await ws.receive_text()
                try:
                    msg: Any = json.loads(text)
                except ValueError:
                    msg = None
                inbox.put_nowait({_CLIENT: msg})
    finally:
        inbox.put_nowait({_CLIENT: None})  # wakes the sender loop, which sees reader done
