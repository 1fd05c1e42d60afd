"""The FastAPI edge: commands → Kafka, queries → ClickHouse, WebSocket tail ← events.

With a chDB DSN this process also runs the projector (chDB lets one process open the
data dir), so queries, the projector and the tail's history share one engine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import limits
from api.auth import Auth, KeyRing
from api.backpressure import install_backpressure
from api.bus import CommandBus
from api.deps import AppContext
from api.drain import drain
from api.envelope import install_error_handlers
from api.generation import GenerationInfo, project_leftovers, watch_generations
from api.idle_sweep import sweep_idle_forever
from api.lean_route import LeanApp
from api.reconcile import reconcile_forever
from api.routes import (
    admin,
    audit,
    bulk,
    control,
    dead_letters,
    executions,
    export,
    health,
    ingest,
    live,
    plans,
    search,
    seed_paths,
    stats,
    step_types,
    tracking,
    workflows,
)
from api.routes import limits as limits_routes
from api.routes import purge as purge_routes
from api.routes.ui import install_ui
from api.startup import check_partitions, restore_if_needed
from api.tail import EventTail
from api.timing import Timed
from projections.clickhouse import ClickHouse
from projections.journal import JournalWriter
from projections.projector import Projector
from projections.purge import apply_retention
from projections.schema import migrate
from runledger import generations
from runledger.settings import Settings, get_settings

log = logging.getLogger("runledger.api")


def create_app(settings: Settings | None = None) -> FastAPI:
    configured = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings = await generations.resolve(configured)
        db = settings.clickhouse_database
        ch = ClickHouse(settings.dsn)
        await migrate(ch, db)
        await check_partitions(ch, settings)
        leftovers = await project_leftovers(settings, ch, db)
        bus = CommandBus(settings)
        await bus.start()
        tail = EventTail(settings)
        await tail.start()
        journal = JournalWriter(ch, db, bus.publish)
        await journal.start()
        projector = Projector(settings, ch, database=db) if settings.uses_chdb else None
        if projector is not None:
            await projector.start()
        ctx = AppContext(settings=settings, bus=bus, tail=tail, ch=ch, journal=journal,
                         projector=projector, restoring=True)  # fmt: skip
        # ctx.projector only from here: a generation switch replaces it, and this frame
        # lives as long as the app (it held the first projector and its cache, ~100 MB)
        del projector
        app.state.ctx = ctx
        ctx.edge = app.state.edge_limits
        await limits.load(ctx)
        tail.watchers.append(ctx.queue.on_event)
        ctx.queue.seed(await limits.queued_rows(ctx))
        policy = await purge_routes.load_retention(ctx)
        if policy is not None:  # a rebuild makes the derived tables anew, without TTLs
            await apply_retention(ch, db, policy)
        background = [asyncio.create_task(reconcile_forever(ctx), name="reconcile"),
                      asyncio.create_task(sweep_idle_forever(ctx), name="idle-sweep")]
        if settings.uses_generations:
            ctx.generation = GenerationInfo(leftovers=leftovers)
            background.append(asyncio.create_task(watch_generations(ctx), name="generations"))
        restoring = asyncio.create_task(restore_if_needed(ctx), name="restore")
        log.info("api serving on %s:%s", settings.host, settings.port)
        if app.state.keys.open:
            log.warning("open mode: no API keys configured (RUNLEDGER_API_KEYS or "
                        "RUNLEDGER_API_KEYS_FILE): whoever reaches this port may do anything")
        try:
            yield
        finally:
            restoring.cancel()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if ctx.rebuild_task is not None:  # it holds the projector paused
                ctx.rebuild_task.cancel()
                await asyncio.gather(ctx.rebuild_task, return_exceptions=True)
            if not ctx.restoring:
                try:
                    await drain(ctx)
                except Exception:
                    log.exception("drain failed; stopping anyway (restore covers the rest)")
            await journal.stop()
            if ctx.projector is not None:
                await ctx.projector.stop()
            await tail.stop()
            await bus.stop()
            ch.close()

    app = LeanApp(title="Runledger", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)
    app.add_middleware(Timed)
    keys = app.state.keys = KeyRing.load(configured.api_keys, configured.api_keys_file)
    app.add_middleware(Auth, keys=keys)
    install_backpressure(app, configured)  # added last: outermost, before timing and routing
    # Routes match in this order, and FastAPI's included routers cost ~5 µs per route
    # tried: `POST /events`, the busiest path, comes first (a search path before the
    # `/executions/{id}` it would otherwise be taken for).
    for module in (ingest, health, plans, search, executions, control, tracking, stats, export,
                   admin, audit, dead_letters, live, workflows, bulk, step_types, limits_routes,
                   purge_routes):
        app.include_router(module.router)
    app.include_router(seed_paths.router)  # the seed documents' own paths (DESIGN.md)
    install_ui(app, configured)
    return app
