"""A safety net for at-least-once: accepted messages that never became events go again.

Every ``reconcile_interval`` seconds, journal entries older than ``reconcile_after``
that no archived event cites are appended again (each execution's archived state first),
with a warning: something between the broker and the state machine dropped them. Their
ids make a repeat harmless when they were only slow. Entries accepted before this process
started are restore's business. A pass is skipped while the workers or the projector are
more than ``BEHIND`` records behind: under a load they cannot keep up with, entries are
late, not lost, and appending them again would only add to the load.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from api.deps import AppContext
from projections.journal import journal_top
from runledger import generations
from runledger.kafka import projector_group, worker_app_id
from runledger.restore import reappend, uncited_entries

log = logging.getLogger("runledger.api.reconcile")
BEHIND = 1_000


async def _behind(ctx: AppContext) -> int:
    """Records the workers and the projector have not read yet."""
    s = ctx.settings
    inputs = [s.topic("commands"), s.topic("step-events")]
    return (await generations.lag(s, worker_app_id(s), inputs)
            + await generations.lag(s, projector_group(s), [s.topic("events")]))


async def upkeep_forever(ctx: AppContext, interval: Callable[[], float],
                         one_pass: Callable[[], Awaitable[None]], what: str) -> None:  # fmt: skip
    """Run ``one_pass`` every ``interval()`` seconds, not while the broker is restored nor
    during a generation switch; a pass that fails is logged and tried again next time."""
    while True:
        await asyncio.sleep(interval())
        if ctx.restoring:
            continue
        try:
            async with ctx.upkeep:
                await one_pass()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; trying again next interval", what)


async def reconcile_forever(ctx: AppContext) -> None:
    watermark = await journal_top(ctx.ch, ctx.db)

    async def one_pass() -> None:
        nonlocal watermark
        watermark = await _reconcile(ctx, watermark)

    await upkeep_forever(ctx, lambda: ctx.settings.reconcile_interval, one_pass,
                         "reconcile pass")  # fmt: skip


async def _reconcile(ctx: AppContext, watermark: int) -> int:
    """One pass; returns the new watermark."""
    s = ctx.settings  # the current topic generation
    if (n := await _behind(ctx)) > BEHIND:
        log.info("reconcile pass skipped: %d records not read yet", n)
        return watermark
    cutoff = int((time.time() - s.reconcile_after) * 1000)
    top = await journal_top(ctx.ch, ctx.db, after=watermark, before_ms=cutoff)
    if top <= watermark:
        return watermark
    entries = await uncited_entries(ctx.ch, ctx.db, after_pos=watermark, before_ms=cutoff)
    entries = [e for e in entries if int(e["journal_pos"]) <= top]
    if entries:
        log.warning("%d accepted journal entries were never applied (first at journal_pos "
                    "%s); appending them again", len(entries), entries[0]["journal_pos"])
        await reappend(s, ctx.ch, ctx.bus.producer, entries, database=ctx.db)
    return top
