"""Reading the step types registered over HTTP (migration 7): the newest registration of
each name that is not deleted."""

from __future__ import annotations

from typing import Any

import orjson

from projections.clickhouse import ClickHouse, identifier


async def registered(ch: ClickHouse, tenant: str, *, database: str) -> list[dict[str, Any]]:
    rows = await ch.query(
        f"SELECT document FROM {identifier(database)}.step_types FINAL "
        "WHERE tenant = {tenant:String} AND deleted = 0 ORDER BY name", {"tenant": tenant})
    return [orjson.loads(r["document"]) for r in rows]
