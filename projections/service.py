"""The projector as its own process (`runledger projector`, for a ClickHouse server).

With chDB the projector runs inside the API process instead (one process per data dir).
"""

from __future__ import annotations

import asyncio
import logging
import signal

from projections.clickhouse import ClickHouse
from projections.projector import Projector
from projections.schema import migrate
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
    try:
        await migrate(ch, database)
        projector = Projector(settings, ch, database=database)
        await projector.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        stopper = asyncio.create_task(stop.wait())
        worker = asyncio.create_task(projector.wait())
        await asyncio.wait({stopper, worker}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        failed = worker.done() and worker.exception() is not None
        await projector.stop()
        await asyncio.gather(worker, return_exceptions=True)
        if failed:
            raise RuntimeError("projector stopped unexpectedly") from worker.exception()
    finally:
        ch.close()


def main() -> None:
    from runledger.logs import setup_logging
    from runledger.settings import get_settings

    settings = get_settings()
    setup_logging(settings.log_level, "projector")
    asyncio.run(run_projector(settings))


if __name__ == "__main__":
    main()
