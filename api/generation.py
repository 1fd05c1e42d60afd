"""Switching the broker to the next topic generation (the embedded default's upkeep).

Every ``RUNLEDGER_GENERATION_CHECK_INTERVAL`` seconds the API process counts the records
in the current generation's topics; past ``RUNLEDGER_GENERATION_MAX_RECORDS`` it moves
to generation N+1 (runledger/generations.py says why). So does a quiet generation (under
one new record a second for ``RUNLEDGER_GENERATION_QUIET_SECONDS``) that holds at least
``RUNLEDGER_GENERATION_QUIET_MIN_RECORDS``: after a burst the broker starts afresh (its
memory and fetch cost are those of the work left) while nothing waits on it.

1. generation N+1's topics are created: the sign for workers and executors, which stop
   and are started again by the supervisor, in N+1;
2. once N's workers have left, N's events topic is final; once the projector has
   committed all of it, ClickHouse holds every event of N (requests are still taken
   meanwhile, on N: nobody reads them there, step 3 appends them again);
3. the journal writer pauses (requests wait) and restore (the same path as at start)
   sends every unfinished execution its archived state into N+1 and appends again what
   the journal holds but no event cites; in-flight step tasks are dispatched again by
   the workers (same task ids), timers are state;
4. the tail moves to N+1 and the journal writer resumes there; then the projector;
5. once N's executors have left, N's topics are deleted (that frees the broker's memory).

Seq continues (the states come from the archive), nothing accepted is lost (the journal),
nothing is doubled (ids). Requests wait for step 3 only, logged with each step.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from api import limits
from api.deps import AppContext
from projections.clickhouse import ClickHouse
from projections.journal import journal_top
from projections.projector import Projector
from runledger import generations
from runledger.kafka import create_topics, group_id, worker_app_id
from runledger.restore import restore
from runledger.settings import Settings

log = logging.getLogger("runledger.api.generation")


@dataclass
class GenerationInfo:
    """What `/stats/realtime` shows under ``generation``."""

    number: int = 0
    records: int | None = None  # at the last check
    broker_mb: float | None = None  # the embedded broker's RSS at the last check
    max_broker_mb: int = 0
    restored_records: int = 0  # what the switch itself put there (not counted as growth)
    max_records: int = 0
    switches: int = 0
    last_switch: dict[str, Any] | None = None  # why ("due"), step → seconds, counts
    # Journal entries at or below this position were read by a worker (their events cite
    # them) when the last switch looked; a switch looks again only above it.
    journal_floor: int = 0
    # The new generation's input ends right after the switch restored it: no next switch
    # before its workers have read that far (else a backlog is carried from one to the next).
    restored_ends: dict[Any, int] = field(default_factory=dict)
    leftovers: list[int] = field(default_factory=list)  # older generations found at start
    reason: str | None = None  # why a switch is due: records, memory, quiet
    # (monotonic time, records) at each check of this generation, as far back as needed
    # to tell a quiet one
    checks: deque[tuple[float, int]] = field(default_factory=deque)

    def public(self) -> dict[str, object]:
        out = asdict(self)
        out.pop("journal_floor")
        out.pop("restored_ends")
        out.pop("leftovers")
        out.pop("checks")
        out.pop("reason")  # last_switch["due"] says it
        return out


async def watch_generations(ctx: AppContext) -> None:
    """Check the generation's size now and then; switch when it is past the threshold."""
    info = ctx.generation
    s = ctx.settings
    info.number, info.max_records, info.max_broker_mb = (
        s.generation, s.generation_max_records, s.generation_max_broker_mb)
    while True:
        await asyncio.sleep(ctx.settings.generation_check_interval)
        if ctx.restoring or ctx.rebuild_task is not None and not ctx.rebuild_task.done():
            continue
        try:
            if again := await generations.delete_older(ctx.settings):
                log.info("deleted %s again (a stopping process had asked for them)", again)
            newer = max(await generations.existing_generations(ctx.settings), default=0)
            unfinished = newer > ctx.settings.generation  # a switch that failed half way
            if unfinished:
                ctx.generation.reason = None  # done again whatever the last check said
            if unfinished or (_due(ctx, await generations.records_in(ctx.settings))
                              and await _settled(ctx)):
                async with ctx.upkeep:
                    await switch_generation(ctx)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("generation check or switch failed; trying again next interval")


async def _settled(ctx: AppContext) -> bool:
    """The generation's workers are up (a worker still starting could otherwise join after
    a switch checked that they are gone) and have read what the last switch put there."""
    s = ctx.settings
    return not await generations.workers_gone(s) and await generations.committed_past(
        s, worker_app_id(s), ctx.generation.restored_ends)


def _due(ctx: AppContext, records: int) -> bool:
    info, s = ctx.generation, ctx.settings
    info.records = records
    info.broker_mb = generations.broker_rss_mb(s)
    info.reason = due(info, s, records, info.broker_mb, time.monotonic())
    return info.reason is not None


def due(info: GenerationInfo, s: Settings, records: int, rss_mb: float | None,
        now: float) -> str | None:
    """Why the generation should move to the next: past the records threshold, past the
    memory threshold, or quiet; None if not. Records count from what the last switch put
    there; memory only once the generation has at least doubled since (so a large set of
    unfinished executions cannot make switches follow each other); quiet only with enough
    records grown for a fresh start to be worth its restore. Records this check in
    ``info.checks`` (what quietness is judged on), dropping the ones a window back."""
    info.checks.append((now, records))
    while len(info.checks) > 1 and now - info.checks[1][0] >= s.generation_quiet_seconds:
        info.checks.popleft()  # the oldest check still needed is the one a window back
    grown = records - info.restored_records
    if grown >= s.generation_max_records:
        return "records"
    if rss_mb is not None and rss_mb >= s.generation_max_broker_mb and \
            grown >= info.restored_records:
        return "memory"
    since, then = info.checks[0]
    if (s.generation_quiet_seconds and now - since >= s.generation_quiet_seconds
            and records - then < s.generation_quiet_seconds
            and grown >= s.generation_quiet_min_records):
        return "quiet"
    return None


async def switch_generation(ctx: AppContext) -> dict[str, float | int]:
    old = ctx.settings
    new = old.at_generation(old.generation + 1)
    info = ctx.generation
    log.info("generation %d holds %s records (threshold %d), broker memory %s MB (threshold "
             "%d), due: %s: moving to generation %d", old.generation, info.records,
             old.generation_max_records, info.broker_mb and round(info.broker_mb),
             old.generation_max_broker_mb, info.reason, new.generation)  # fmt: skip
    due_to = info.reason or "unfinished"  # "unfinished": a switch that failed half way
    steps: dict[str, float | int] = {}
    t0 = time.monotonic()

    def lap(name: str) -> None:
        steps[name] = round(time.monotonic() - t0 - sum(
            v for k, v in steps.items() if k.endswith("_s")), 3)  # fmt: skip
        log.info("generation %d → %d: %s done (%.2fs)", old.generation, new.generation,
                 name.removesuffix("_s"), steps[name])  # fmt: skip

    ctx.switching = True
    try:
        await create_topics(new)
        lap("create_topics_s")
        await generations.until(partial(generations.workers_gone, old),
                                f"generation {old.generation}'s workers to stop")  # fmt: skip
        lap("workers_stopped_s")
        await generations.until(partial(generations.projected, old),
                                f"the projector to finish generation {old.generation}")  # fmt: skip
        lap("projector_caught_up_s")
        # Until here requests were taken as usual: what went to N unread is appended again
        # below. From the journal's top at the pause to the move to N+1 nothing may go
        # to N, so requests wait for just the restore.
        async with ctx.journal.paused():
            lap("pause_journal_s")
            top = await journal_top(ctx.ch, ctx.db)
            report = await restore(new, ctx.ch, ctx.bus.producer, database=ctx.db,
                                   after_pos=info.journal_floor)  # fmt: skip
            # What was appended again may stay unread through the next switch too.
            info.journal_floor = top if report.first_pos is None else report.first_pos - 1
            steps["executions"], steps["entries"] = report.executions, report.entries
            lap("restore_s")
            await ctx.tail.switch(new)
            ctx.settings = ctx.bus.settings = new
            ctx.hot_until.clear()  # nothing finished is in the new workers' tables
            await limits.announce(ctx)  # the new workers' admission queue starts empty
            lap("switch_tail_s")
        info.restored_records = await generations.records_in(new)
        info.restored_ends = await generations.end_offsets(
            new, [new.topic("commands"), new.topic("step-events")])
    finally:
        ctx.switching = False
    if ctx.projector is not None:  # joining a group takes ~5 s: not while requests wait
        projector = Projector(new, ctx.ch, database=ctx.db)
        await projector.start()
        done, ctx.projector = ctx.projector, projector
        await done.stop()  # it has nothing left: generation N was projected to its end
        lap("switch_projector_s")
    info.checks.clear()  # quietness is the new generation's own
    info.reason = None
    await delete_generations(new, [old.generation])
    lap("delete_old_s")
    steps["total_s"] = round(time.monotonic() - t0, 3)
    # together, so that /stats/realtime never shows the new number with the last switch
    info.number, info.switches = new.generation, info.switches + 1
    info.last_switch = {"due": due_to, **steps}
    info.records = None
    log.info("now on generation %d (%s)", new.generation, steps)
    return steps


async def project_leftovers(settings: Settings, ch: ClickHouse, database: str) -> list[int]:
    """At start: generations older than ``settings.generation`` are what an interrupted
    switch left. Project each to its end (their workers stop once a newer generation
    exists) and return them; restore then goes again and deletes them."""
    if not settings.uses_generations:
        return []
    older = [g for g in await generations.existing_generations(settings)
             if g < settings.generation]  # fmt: skip
    for g in older:
        old = settings.at_generation(g)
        log.warning("generation %d is left over from an interrupted switch: projecting the "
                    "rest of it, then restoring into generation %d", g, settings.generation)
        await generations.until(partial(generations.workers_gone, old),
                     f"generation {g}'s workers to stop")  # fmt: skip
        projector = Projector(old, ch, database=database)
        await projector.start()
        try:
            await generations.until(partial(generations.projected, old),
                                    f"the projector to finish generation {g}")  # fmt: skip
        finally:
            await projector.stop()
    return older


async def delete_generations(settings: Settings, numbers: list[int]) -> None:
    """Once their executors have left, delete the topics of generations ``numbers`` (and
    of any other generation older than ``settings.generation``)."""
    for g in numbers:
        old = settings.at_generation(g)
        await generations.until(partial(generations.gone, old, group_id(old, "executors")),
                                f"generation {g}'s executors to stop")  # fmt: skip
    deleted = await generations.delete_older(settings)
    log.info("deleted %d topics of generations %s", len(deleted), numbers)
