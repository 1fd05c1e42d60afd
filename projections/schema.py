"""Applying the ClickHouse migrations (``projections.migrations``), plus the small
``meta`` key/value store."""

from __future__ import annotations

import logging
import time

from projections.clickhouse import ClickHouse, identifier
from projections.migrations import MIGRATIONS, TS

log = logging.getLogger(__name__)

DEFAULT_DATABASE = "runledger"


async def migrate(ch: ClickHouse, database: str = DEFAULT_DATABASE) -> list[int]:
    """Create ``database`` and apply the missing migrations in order; returns their versions."""
    db = identifier(database)
    await ch.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    await ch.command(
        f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
        f"(version UInt32, applied_at {TS}) ENGINE = MergeTree ORDER BY version"
    )
    rows = await ch.query(f"SELECT DISTINCT version FROM {db}.schema_migrations")
    done = {int(r["version"]) for r in rows}
    applied: list[int] = []
    pending = [m for m in MIGRATIONS if m[0] not in done]
    # One refold, after the statements of the last pending refold migration: an earlier
    # one's tables lack what later migrations add to them. Until then a crash leaves the
    # last one unrecorded, so the next start refolds.
    last_refold = max((v for v, _, refold in pending if refold), default=None)
    for version, statements, _ in pending:
        for ddl in statements:
            await ch.command(ddl.format(db=db))
        if version == last_refold and done:  # a fresh database has no events to fold
            await _refold(ch, db)
        await ch.insert(
            "schema_migrations", [[version], [int(time.time() * 1000)]],
            ["version", "applied_at"], database=db,
        )  # fmt: skip
        log.info("applied ClickHouse migration %d to %s", version, db)
        applied.append(version)
    return applied


async def _refold(ch: ClickHouse, db: str) -> None:
    from projections.rebuild import rebuild_projections  # rebuild writes through this schema

    log.info("migration: rebuilding the derived tables of %s from its events", db)
    run = await rebuild_projections(ch, db)
    log.info("migration: folded %d events of %d executions", run.events, run.executions)


async def schema_version(ch: ClickHouse, database: str = DEFAULT_DATABASE) -> int:
    db = identifier(database)
    rows = await ch.query(f"SELECT max(version) AS v FROM {db}.schema_migrations")
    return int(rows[0]["v"]) if rows else 0


async def read_meta(
    ch: ClickHouse, key: str, *, database: str = DEFAULT_DATABASE, tenant: str = "default"
) -> str | None:
    db = identifier(database)
    rows = await ch.query(
        f"SELECT value FROM {db}.meta FINAL "
        "WHERE tenant = {tenant:String} AND key = {key:String}",
        {"tenant": tenant, "key": key},
    )
    return str(rows[0]["value"]) if rows else None


async def write_meta(
    ch: ClickHouse,
    key: str,
    value: str,
    *,
    database: str = DEFAULT_DATABASE,
    tenant: str = "default",
) -> None:
    db = identifier(database)
    await ch.insert(
        "meta", [[tenant], [key], [value], [int(time.time() * 1000)]],
        ["tenant", "key", "value", "updated_at"], database=db,
    )  # fmt: skip
