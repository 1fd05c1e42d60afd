"""Graceful shutdown: let the workers and the projector catch up before stopping.

The API has stopped taking requests by the time this runs (uvicorn stops accepting
first), and the supervisor stops the workers only after the API: so the workers can
still apply what was accepted, and the projector can still write what they emit.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import TopicPartition

from api.deps import AppContext
from runledger.kafka import make_consumer, worker_app_id

log = logging.getLogger("runledger.api.drain")


async def drain(ctx: AppContext, wait_s: float = 15.0) -> bool:
    """True once the worker group committed every input and the projector every event."""
    s = ctx.settings
    deadline = time.monotonic() + wait_s
    consumer = make_consumer(s, group_id=worker_app_id(s))  # never subscribes: reads only
    await consumer.start()
    try:
        inputs = [TopicPartition(s.topic(t), p) for t in ("commands", "step-events")
                  for p in range(s.partitions)]  # fmt: skip
        events = [TopicPartition(s.topic("events"), p) for p in range(s.partitions)]
        while time.monotonic() < deadline:
            ends = await consumer.end_offsets(inputs + events)
            committed = {tp: (await consumer.committed(tp)) or 0 for tp in inputs}
            behind_workers = sum(max(ends[tp] - committed[tp], 0) for tp in inputs)
            behind_projector = 0
            if ctx.projector is not None:
                await ctx.projector.flush()
                done = ctx.projector.lag()["partitions"]
                behind_projector = sum(
                    max(ends[tp] - (done.get(f"{tp.topic}/{tp.partition}", {}).get("committed")
                                    or 0), 0) for tp in events)  # fmt: skip
            if behind_workers == 0 and behind_projector == 0:
                log.info("drained: workers and projector caught up")
                return True
            await asyncio.sleep(0.25)
        log.warning("drain gave up after %.0fs: workers %d and projector %d messages behind",
                    wait_s, behind_workers, behind_projector)  # fmt: skip
        return False
    finally:
        await consumer.stop()
