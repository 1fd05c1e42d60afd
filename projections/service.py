"""The projector as its own process (`runledger projector`, for a ClickHouse server).

With chDB the projector runs inside the API process instead (one process per data dir).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from functools import partial
from typing import Any

from projections.clickhouse import ClickHouse
from projections.projector import Projector
from projections.schema import migrate
from runledger import generations
from runledger.settings import Settings

log = logging.getLogger(__name__)


async def run_projector(settings: Settings) -> None:
    """Run a projector on its own until SIGTERM/SIGINT (for a ClickHouse server DSN).

    With chDB the projector belongs inside the API process (one process per data dir).
    """
    database = settings.clickhouse_database
    ch = ClickHouse(settings.dsn)
    if ch.is_chdb:
        log.warning("standalone projector on a chDB dir: no other process may open %s",
                    settings.dsn)  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await migrate(ch, database)
        settings = await generations.resolve(settings)
        while not stop.is_set():  # once per topic generation
            settings = await _project_generation(settings, ch, database, stop)
    finally:
        ch.close()


async def _project_generation(
    settings: Settings, ch: ClickHouse, database: str, stop: asyncio.Event
) -> Settings:
    """Project ``settings``' generation until ``stop``, or until a newer generation exists
    and this one's workers have left and all of its events are in ClickHouse; returns the
    generation to go on with."""
    projector = Projector(settings, ch, database=database)
    await projector.start()
    stopper = asyncio.create_task(stop.wait())
    worker = asyncio.create_task(projector.wait())
    waits: set[asyncio.Task[Any]] = {stopper, worker}
    moved = None
    if settings.uses_generations:
        moved = asyncio.create_task(_next_generation(settings))
        waits.add(moved)
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in (stopper, moved):
        if task is not None:
            task.cancel()
    failed = worker.done() and worker.exception() is not None
    await projector.stop()
    await asyncio.gather(worker, return_exceptions=True)
    if failed:
        raise RuntimeError("projector stopped unexpectedly") from worker.exception()
    if moved is not None and moved.done() and not moved.cancelled():
        return settings.at_generation(moved.result())
    return settings


async def _next_generation(settings: Settings) -> int:
    newer = await generations.wait_for_newer(settings)
    await generations.until(partial(generations.workers_gone, settings), "the workers to stop")
    await generations.until(partial(generations.projected, settings),
                            f"the end of generation {settings.generation}")  # fmt: skip
    return newer


def main() -> None:
    from runledger.logs import setup_logging
    from runledger.settings import get_settings

    settings = get_settings()
    setup_logging(settings.log_level, "projector")
    asyncio.run(run_projector(settings))


if __name__ == "__main__":
    main()
