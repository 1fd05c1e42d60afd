"""The FastAPI edge: commands → Kafka, queries → ClickHouse, WebSocket tail ← events.

With a chDB DSN this process also runs the projector (chDB lets one process open the
data dir), so queries, the projector and the tail's history share one engine.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.bus import CommandBus
from api.deps import AppContext
from api.envelope import install_error_handlers
from api.routes import executions, health, ingest, live, tracking
from api.tail import EventTail
from projections.clickhouse import ClickHouse
from projections.projector import Projector
from projections.schema import migrate
from runledger.settings import Settings, get_settings

log = logging.getLogger("runledger.api")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ch = ClickHouse(settings.dsn)
        await migrate(ch, settings.clickhouse_database)
        bus = CommandBus(settings)
        await bus.start()
        tail = EventTail(settings)
        await tail.start()
        projector = (Projector(settings, ch, database=settings.clickhouse_database)
                     if settings.uses_chdb else None)
        if projector is not None:
            await projector.start()
        app.state.ctx = AppContext(settings=settings, bus=bus, tail=tail, ch=ch,
                                   projector=projector)  # fmt: skip
        log.info("api ready to serve on %s:%s", settings.host, settings.port)
        try:
            yield
        finally:
            if projector is not None:
                await projector.stop()
            await tail.stop()
            await bus.stop()
            ch.close()

    app = FastAPI(title="Runledger", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)
    for module in (health, executions, ingest, tracking, live):
        app.include_router(module.router)
    return app
