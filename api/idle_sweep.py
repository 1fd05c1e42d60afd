"""The tracked idle timeout of executions no worker holds.

A reported execution with no event for RUNLEDGER_IDLE_TTL leaves the worker's table
(streams/hot_set.py), and with it the timer that would end it as ``Abandoned`` once
RUNLEDGER_TRACKED_IDLE_TIMEOUT passes with no report. Every ``idle_sweep_interval``
seconds this sends the archived state of each reported execution still running past
that timeout (and one interval more, for a worker that holds it to fire it first) as a
`rehydrate`: the worker takes it back, finds the timer due and fires it. A worker that
holds a newer state ignores the rehydrate. Unlike reconcile, a pass runs also while the
workers or the projector are behind (under a steady load they often are by a thousand
records): an execution evicted a day ago has nothing the projector has not written, and
one that came back since is held by a worker, which ignores an older state.
"""

from __future__ import annotations

import logging
import time

from api.deps import AppContext
from api.reconcile import upkeep_forever
from projections import queries
from projections.clickhouse import ClickHouse, identifier
from runledger.restore import rehydrate

log = logging.getLogger("runledger.api.idle_sweep")
SWEEP_MAX = 10_000  # executions per pass; the rest wait for the next one


async def sweep_idle_forever(ctx: AppContext) -> None:
    async def one_pass() -> None:
        if ctx.settings.idle_ttl:  # else no worker lets an unfinished execution go
            await sweep_idle(ctx)

    await upkeep_forever(ctx, lambda: ctx.settings.idle_sweep_interval, one_pass,
                         "idle sweep")  # fmt: skip


async def sweep_idle(ctx: AppContext) -> int:
    """One pass: how many executions it sent back to the workers."""
    s = ctx.settings
    due = int((time.time() - s.tracked_idle_timeout - s.idle_sweep_interval) * 1000)
    ids = await idle_execution_ids(ctx.ch, ctx.db, due, SWEEP_MAX)
    if ids:
        log.info("idle sweep: %d executions past the tracked idle timeout go back to the "
                 "workers", len(ids))  # fmt: skip
        await rehydrate(s, ctx.ch, ctx.bus.producer, ids, database=ctx.db)
    return len(ids)


async def idle_execution_ids(ch: ClickHouse, database: str, idle_before: int,
                             limit: int) -> list[str]:  # fmt: skip
    """Up to ``limit`` reported executions still running with no event since before
    ``idle_before`` (epoch ms), the longest idle first."""
    rows = await ch.query(
        f"SELECT execution_id FROM {identifier(database)}.executions FINAL "
        f"WHERE {queries.IDLE_SQL} ORDER BY updated_at LIMIT {{limit:UInt32}}",
        {"idle": idle_before, "limit": limit})
    return [r["execution_id"] for r in rows]
