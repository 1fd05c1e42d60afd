"""A safety net for at-least-once: accepted messages that never became events go again.

Every ``reconcile_interval`` seconds, journal entries older than ``reconcile_after``
that no archived event cites are appended again (each execution's archived state first),
with a warning: something between the broker and the state machine dropped them. Their
ids make a repeat harmless when they were only slow. Entries accepted before this process
started are restore's business.
"""

from __future__ import annotations

import asyncio
import logging
import time

from api.deps import AppContext
from projections.clickhouse import identifier
from runledger.restore import reappend, uncited_entries

log = logging.getLogger("runledger.api.reconcile")


async def _max_pos(ctx: AppContext, after: int, before_ms: int | None) -> int:
    db = identifier(ctx.db)
    where = "journal_pos > {after:UInt64}"
    if before_ms is not None:
        where += " AND received_at < fromUnixTimestamp64Milli({before:Int64}, 'UTC')"
    rows = await ctx.ch.query(f"SELECT max(journal_pos) AS p FROM {db}.journal WHERE {where}",
                              {"after": after, "before": before_ms or 0})  # fmt: skip
    return int(rows[0]["p"] or 0) if rows else 0


async def reconcile_forever(ctx: AppContext) -> None:
    s = ctx.settings
    watermark = await _max_pos(ctx, 0, None)
    while True:
        await asyncio.sleep(s.reconcile_interval)
        if ctx.restoring or ctx.switching:
            continue
        try:
            cutoff = int((time.time() - s.reconcile_after) * 1000)
            top = await _max_pos(ctx, watermark, cutoff)
            if top <= watermark:
                continue
            entries = await uncited_entries(ctx.ch, ctx.db, after_pos=watermark,
                                            before_ms=cutoff)  # fmt: skip
            entries = [e for e in entries if int(e["journal_pos"]) <= top]
            if entries:
                log.warning("%d accepted journal entries were never applied (first at "
                            "journal_pos %s); appending them again", len(entries),
                            entries[0]["journal_pos"])  # fmt: skip
                await reappend(s, ctx.ch, ctx.bus.producer, entries, database=ctx.db)
            watermark = top
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reconcile pass failed; trying again next interval")
