"""What the API process does before it takes work: the partition check and restore."""

from __future__ import annotations

import asyncio
import logging

from api import limits
from api.deps import AppContext
from api.generation import delete_generations
from projections.clickhouse import ClickHouse
from projections.schema import read_meta, write_meta
from runledger.restore import archive_has_data, broker_is_empty, restore
from runledger.settings import Settings

log = logging.getLogger("runledger.api.startup")


class PartitionCountChanged(RuntimeError):
    pass


async def check_partitions(ch: ClickHouse, settings: Settings) -> None:
    """The partition count is recorded at first start; later starts must match it."""
    db = settings.clickhouse_database
    recorded = await read_meta(ch, "partitions", database=db)
    if recorded is None:
        await write_meta(ch, "partitions", str(settings.partitions), database=db)
    elif int(recorded) != settings.partitions:
        raise PartitionCountChanged(
            f"ClickHouse records {recorded} partitions but RUNLEDGER_PARTITIONS is "
            f"{settings.partitions}; refusing to start (the data would be keyed differently)")


async def restore_if_needed(ctx: AppContext) -> None:
    """Restore the broker from ClickHouse when it is empty and ClickHouse is not.

    Commands get 503 and `/ready` says `restore` until this is done; a failed attempt is
    retried with backoff.
    """
    delay = 1.0
    while True:
        try:
            if ctx.generation is not None and ctx.generation.leftovers:
                # Leftovers were projected before the projector started (api/app.py).
                await restore(ctx.settings, ctx.ch, ctx.bus.producer, database=ctx.db)
                await delete_generations(ctx.settings, ctx.generation.leftovers)
                ctx.generation.leftovers = []
            elif await broker_is_empty(ctx.settings) and await archive_has_data(ctx.ch, ctx.db):
                log.info("the broker is empty and ClickHouse is not: restoring")
                await restore(ctx.settings, ctx.ch, ctx.bus.producer, database=ctx.db)
            await limits.announce(ctx)  # the admission queue admits nothing before this
            ctx.restoring = False
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("restore failed; retrying in %.0fs", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
