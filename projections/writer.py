"""The batch writer: one projected batch into ClickHouse, idempotently."""

from __future__ import annotations

import time

from projections.clickhouse import ClickHouse
from projections.rows import Projection
from projections.schema import DEFAULT_DATABASE


async def write_projection(
    ch: ClickHouse, proj: Projection, *, database: str = DEFAULT_DATABASE
) -> dict[str, float]:
    """Insert events, then step_records, then executions, each with the batch's token.

    Re-sending the same batch (a crash before the offset commit) is dropped by
    ClickHouse. Returns each insert's duration in ms.
    """
    timings: dict[str, float] = {}
    if proj.empty:
        return timings
    token = proj.token
    for table, rows in (("events", proj.events), ("step_records", proj.step_records),
                        ("executions", proj.executions)):  # fmt: skip
        if not len(rows):
            continue
        started = time.perf_counter()
        await ch.insert(table, rows.columns, rows.names, database=database,
                        token=f"{token}:{table}")  # fmt: skip
        timings[table] = (time.perf_counter() - started) * 1000
    return timings
