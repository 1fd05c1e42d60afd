"""What `/ready` checks: the broker, the workers' consumer group, ClickHouse."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiokafka.admin import AIOKafkaAdminClient

from runledger.kafka import worker_app_id

if TYPE_CHECKING:
    from api.deps import AppContext

log = logging.getLogger("runledger.api.ready")


async def broker_and_workers(ctx: AppContext) -> tuple[bool, bool]:
    """Whether the broker answers now, and whether the worker consumer group has at least
    one member (our producer and tail may still think they are connected to a broker
    that just died)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=ctx.settings.bootstrap)
    try:
        await asyncio.wait_for(admin.start(), 3)
    except Exception as exc:
        log.debug("broker check failed: %r", exc)
        await admin.close()
        return False, False
    try:
        groups = await asyncio.wait_for(
            admin.describe_consumer_groups([worker_app_id(ctx.settings)]), 3)
        for response in groups:
            for group in response.groups:
                members = group[5] if len(group) > 5 else []
                if members:
                    return True, True
        return True, False
    except Exception as exc:  # a group the broker does not know yet
        log.debug("worker group check failed: %r", exc)
        return True, False
    finally:
        await admin.close()


async def readiness(ctx: AppContext) -> dict[str, bool]:
    broker, workers = ctx.bus.started and ctx.tail.running, False
    if broker:
        broker, workers = await broker_and_workers(ctx)
    try:
        clickhouse = bool(await asyncio.wait_for(ctx.ch.ping(), 3))
    except Exception:
        clickhouse = False
    # While the topics move to the next generation the workers restart there; requests wait.
    workers = broker and (ctx.switching or workers)
    checks = {"broker": broker, "workers": workers, "clickhouse": clickhouse,
              "restore": not ctx.restoring}
    if ctx.projector is not None:
        checks["projector"] = bool(getattr(ctx.projector, "running", True))
    return checks
