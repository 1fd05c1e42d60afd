"""The limits in force (streams/limits.py): the settings' at first, then the latest change
made through `PUT /api/v1/admin/limits` (journaled; read back from the journal at start).

The admission queue learns them from a ``SetLimits`` message this process sends at start
(after any restore) and on every change; each API process refuses starts past
``max_queued`` by its own view of the queue (``QueueWatch``): what it accepted itself, and
what the events tail shows of everyone's (api/queue_watch.py).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from api.deps import AppContext
from projections.clickhouse import identifier
from projections.journal import latest_payload
from streams.admission_contracts import ADMISSION_KEY, SetLimits
from streams.executors.system_limits import SystemCaps
from streams.limits import Limits

ACTION = "limits.set"
# Topic-less: each API process reads it back at start; the executors ask an API for theirs.
PROCESS_ACTION = "limits.process"


async def load(ctx: AppContext) -> None:
    """At start: the latest changes if any, else the settings' limits."""
    raw = await latest_payload(ctx.ch, ctx.db, ACTION)
    ctx.limits = SetLimits.model_validate_json(raw).limits if raw else ctx.settings.limits
    ctx.executor_caps = SystemCaps.from_settings(ctx.settings)
    raw = await latest_payload(ctx.ch, ctx.db, PROCESS_ACTION)
    if raw:
        apply_process(ctx, orjson.loads(raw))


def apply_process(ctx: AppContext, doc: dict[str, Any]) -> None:
    """Put a ``limits.process`` document (``edge``, ``executors``) in force here."""
    if ctx.edge is not None:
        for key, value in doc.get("edge", {}).items():
            setattr(ctx.edge, key, value)
    if "executors" in doc:
        ctx.executor_caps = SystemCaps.model_validate(doc["executors"])


def process_doc(ctx: AppContext) -> dict[str, Any]:
    """The ``limits.process`` document in force here (what `apply_process` takes)."""
    return {"edge": ctx.edge.model_dump(mode="json") if ctx.edge is not None else {},
            "executors": ctx.executor_caps.model_dump() if ctx.executor_caps else {}}


async def announce(ctx: AppContext) -> None:
    """Tell the admission queue the limits in force (at start: it admits nothing until
    it knows them)."""
    await ctx.bus.publish([(ctx.settings.topic("commands"), ADMISSION_KEY,
                            payload(ctx.limits, int(time.time() * 1000)))])  # fmt: skip


def payload(limits: Limits, at: int) -> bytes:
    return SetLimits(received_at=at, limits=limits).model_dump_json().encode()


async def queued_rows(ctx: AppContext) -> list[dict[str, Any]]:
    """The executions ClickHouse shows queued: id, tenant, workflow and since when."""
    db = identifier(ctx.db)
    return await ctx.ch.query(
        "SELECT execution_id, tenant, workflow_id, toUnixTimestamp64Milli(started_at) AS since "
        f"FROM {db}.executions FINAL WHERE status = 'queued'")  # fmt: skip
