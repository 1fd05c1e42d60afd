"""An execution's history after a seq, from every place it may be right now.

ClickHouse holds what is projected, the projector's buffer what is about to be, and
the events tail what this process saw live: their union, deduplicated by seq.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from projections import queries

if TYPE_CHECKING:
    from api.deps import AppContext


async def merged_history(
    ctx: AppContext, execution_id: str, after_seq: int, tenant: str = "default"
) -> list[dict[str, Any]]:
    by_seq: dict[int, dict[str, Any]] = {}
    stored = await queries.execution_events(
        ctx.ch, execution_id, after_seq, 100_000, tenant, database=ctx.db
    )
    for ev in stored:
        by_seq[ev["seq"]] = ev
    if ctx.projector is not None:
        for pending in ctx.projector.pending_events(execution_id, after_seq):
            by_seq.setdefault(pending.seq, pending.model_dump())
    for ev in ctx.tail.recent_after(execution_id, after_seq):
        by_seq.setdefault(ev["seq"], ev)
    return [by_seq[s] for s in sorted(by_seq)]
