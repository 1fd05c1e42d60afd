"""`WS /ws/v1/executions/{id}`: history after `after_seq`, then live events, in seq order.

The subscriber is registered for live events before history is read, so nothing falls
between the two; anything at or below the last sent seq is dropped, and a gap makes it
read history again until the gap is filled.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from api.deps import AppContext
from api.history import merged_history

router = APIRouter(tags=["live"])
GAP_RETRY_S = 0.25


class _Stream:
    def __init__(self, ws: WebSocket, ctx: AppContext, eid: str, after_seq: int) -> None:
        self.ws, self.ctx, self.eid = ws, ctx, eid
        self.last = after_seq
        self.held: dict[int, dict[str, Any]] = {}
        self.completed = False

    async def offer(self, events: list[dict[str, Any]]) -> None:
        for ev in events:
            if ev["seq"] > self.last:
                self.held.setdefault(ev["seq"], ev)
        while self.last + 1 in self.held:
            ev = self.held.pop(self.last + 1)
            await self.ws.send_json(ev)
            self.last = ev["seq"]
            if ev["event_type"] == "execution_completed":
                self.completed = True

    async def refill(self) -> None:
        await self.offer(await merged_history(self.ctx, self.eid, self.last))


@router.websocket("/ws/v1/executions/{execution_id}")
async def tail_execution(ws: WebSocket, execution_id: str, after_seq: int = 0,
                         follow: bool = False) -> None:  # fmt: skip
    ctx: AppContext = ws.app.state.ctx
    await ws.accept()
    queue = ctx.tail.subscribe(execution_id)
    stream = _Stream(ws, ctx, execution_id, max(after_seq, 0))
    reader = asyncio.create_task(_drain_client(ws))
    heartbeat = ctx.settings.ws_heartbeat_interval
    try:
        await stream.refill()
        next_beat = time.monotonic() + heartbeat
        while not (stream.completed and not follow) and not reader.done():
            wait = GAP_RETRY_S if stream.held else max(next_beat - time.monotonic(), 0.01)
            try:
                ev = await asyncio.wait_for(queue.get(), wait)
                await stream.offer([ev])
            except TimeoutError:
                pass
            if stream.held:
                await stream.refill()
            if time.monotonic() >= next_beat:
                await ws.send_json({"event_type": "heartbeat", "execution_id": execution_id,
                                    "last_seq": stream.last,
                                    "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                               time.gmtime())})
                next_beat = time.monotonic() + heartbeat
        if stream.completed and not follow:
            await ws.close(code=1000)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        ctx.tail.unsubscribe(execution_id, queue)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


async def _drain_client(ws: WebSocket) -> None:
    """Read (and for now ignore) client frames; ends when the client goes away."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await ws.receive_text()
