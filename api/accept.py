"""Accepting messages: journal them, append them to Kafka, then answer (DESIGN.md).

A message for an execution that has finished, or a reported one idle for long, may reach
a worker that no longer holds it (they leave the worker's table RUNLEDGER_FINISHED_TTL
and RUNLEDGER_IDLE_TTL after their last event: streams/hot_set.py), so its archived
state goes in front of it, on the same topic, as a `rehydrate`.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace

from aiokafka.errors import KafkaError

from api.archive import hot_seconds
from api.auth import current_actor
from api.deps import AppContext
from api.envelope import ApiError
from projections.journal import Entry
from runledger.metrics import COMMANDS
from streams.contracts import Rehydrate


async def accept(ctx: AppContext, entries: Sequence[Entry]) -> list[int]:
    """Journal ``entries`` (ClickHouse) and append them to their topics, in that order."""
    if ctx.restoring:
        raise ApiError(503, "restoring", "the broker is being restored from ClickHouse; retry "
                       "shortly", category="unavailable")  # fmt: skip
    actor = current_actor.get()
    if actor is not None:  # the API key that acted (api/auth.py)
        entries = [replace(e, actor=actor) if e.actor == "anonymous" else e for e in entries]
    try:
        positions = await ctx.journal.append(await _with_archived_states(ctx, entries))
    except ApiError:
        raise
    except KafkaError as exc:
        raise ApiError(503, "broker_unavailable",
                       f"the broker did not take the write: {exc}") from exc
    except Exception as exc:
        raise ApiError(503, "journal_unavailable",
                       f"the journal (ClickHouse) did not take the write: {exc}") from exc
    for e in entries:
        if e.topic:  # topic-less entries (workflow changes) are about no execution
            ctx.remember_accepted(e.execution_id, e.tenant)
    # One increment per action: each writes the metrics file under a lock (~5 µs), and a
    # report request holds an entry per execution.
    for action, n in collections.Counter(e.action for e in entries).items():
        COMMANDS.labels(action).inc(n)
    return positions


HOT_IDS = 200_000  # executions remembered as not archived


def is_new(ctx: AppContext, execution_id: str) -> None:
    """``execution_id`` was made for this command (``new_id``): nothing of it is archived,
    so its first command skips the archive lookup below."""
    _not_archived(ctx, [execution_id], time.monotonic())


def _not_archived(ctx: AppContext, execution_ids: Iterable[str], now: float) -> None:
    # Not archived, or neither finished nor idle for long (api/archive.py): a worker keeps
    # it at least ``hot_seconds`` from now, so no need to look again before then.
    # An OrderedDict: popping a plain dict's oldest key scans the slots its earlier pops
    # left empty, ~74 µs per new execution once 200,000 were held (against ~2 µs).
    hot, until = hot_seconds(ctx.settings), ctx.hot_until
    for eid in execution_ids:
        until[eid] = now + hot
        until.move_to_end(eid)
    while len(until) > HOT_IDS:
        until.popitem(last=False)


async def _with_archived_states(ctx: AppContext, entries: Sequence[Entry]) -> list[Entry]:
    now = time.monotonic()
    unknown = {e.execution_id for e in entries
               if e.topic and ctx.hot_until.get(e.execution_id, 0) < now}  # fmt: skip
    if not unknown:
        return list(entries)
    evicted = await ctx.archive.maybe_evicted(unknown)
    _not_archived(ctx, unknown - evicted.keys(), now)
    out: list[Entry] = []
    sent: set[tuple[str, str]] = set()
    for e in entries:
        state = evicted.get(e.execution_id)
        if state is not None and e.topic and (e.execution_id, e.topic) not in sent:
            sent.add((e.execution_id, e.topic))
            msg = Rehydrate(execution_id=e.execution_id, tenant=state.tenant,
                            received_at=e.received_at, state=state.model_dump(mode="json"))
            out.append(Entry(action="rehydrate", execution_id=e.execution_id, ids=(),
                             topic=e.topic, payload=msg.model_dump_json().encode(),
                             received_at=e.received_at, tenant=e.tenant, actor="system"))
        out.append(e)
    return out
