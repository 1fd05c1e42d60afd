"""Data protection in ClickHouse: purge executions everywhere they are stored, and
per-tenant retention as table TTLs (security issue; the API's admin routes call these).

Every table that holds an execution's data: ``events`` (the archive), ``executions``,
``executions_by_time``, ``executions_by_status``, ``step_records``, ``journal`` (its
commands and reports) and ``dead_letters``. Deletes are mutations that finish before the
call returns.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from projections.clickhouse import ClickHouse, identifier

# table → (column naming the execution, column naming the tenant or None, time column)
TABLES: dict[str, tuple[str, str | None, str]] = {
    "events": ("execution_id", "tenant", "timestamp"),
    "executions": ("execution_id", "tenant", "started_at"),
    "executions_by_time": ("execution_id", "tenant", "started_at"),
    "executions_by_status": ("execution_id", "tenant", "started_at"),
    "step_records": ("execution_id", "tenant", "started_at"),
    "journal": ("execution_id", "tenant", "received_at"),
    "dead_letters": ("execution_id", None, "at"),
}
# Which retention figure each table follows.
KEEP = {"events": "events_days", "executions": "records_days",
        "executions_by_time": "records_days", "executions_by_status": "records_days",
        "step_records": "records_days", "journal": "journal_days",
        "dead_letters": "events_days"}  # fmt: skip
TENANT_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,100}$")  # written into TTL DDL: no quotes


async def purge(ch: ClickHouse, database: str, tenant: str, execution_ids: list[str]) -> int:
    """Delete every row of ``execution_ids`` (of ``tenant``) from every table; how many
    tables were touched."""
    db = identifier(database)
    for table, (column, tenant_column, _) in TABLES.items():
        where = f"{column} IN {{ids:Array(String)}}"
        if tenant_column:
            where += f" AND {tenant_column} = {{tenant:String}}"
        await ch.command(f"ALTER TABLE {db}.{table} DELETE WHERE {where} "
                         "SETTINGS mutations_sync = 2", {"ids": execution_ids, "tenant": tenant})
    return len(TABLES)


class Keep(BaseModel):
    """How many days rows are kept (None: for ever)."""

    model_config = ConfigDict(extra="forbid")

    events_days: int | None = Field(default=None, ge=1, le=36_500)
    records_days: int | None = Field(default=None, ge=1, le=36_500)
    journal_days: int | None = Field(default=None, ge=1, le=36_500)


class Retention(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: Keep = Field(default_factory=Keep)
    tenants: dict[str, Keep] = Field(default_factory=dict, max_length=1000)

    def check_names(self) -> list[str]:
        return [t for t in self.tenants if not TENANT_NAME.match(t)]


def ttl_clause(table: str, policy: Retention) -> str | None:
    """The table's TTL: one rule per tenant with its own figure, one for the rest."""
    _, tenant_column, at = TABLES[table]
    figure = KEEP[table]
    rules = []
    named = []
    for tenant, keep in sorted(policy.tenants.items()):
        days = getattr(keep, figure)
        named.append(tenant)
        if days is not None and tenant_column:
            rules.append(f"toDateTime({at}) + INTERVAL {int(days)} DAY DELETE "
                         f"WHERE {tenant_column} = '{tenant}'")
    default = getattr(policy.default, figure)
    if default is not None:
        rule = f"toDateTime({at}) + INTERVAL {int(default)} DAY DELETE"
        if named and tenant_column:
            rule += f" WHERE {tenant_column} NOT IN ({', '.join(repr(t) for t in named)})"
        rules.append(rule)
    return ", ".join(rules) if rules else None


async def apply_retention(ch: ClickHouse, database: str, policy: Retention) -> dict[str, Any]:
    """Set each table's TTL to ``policy`` (or remove it); the clauses set."""
    db = identifier(database)
    out: dict[str, Any] = {}
    for table in TABLES:
        clause = ttl_clause(table, policy)
        if clause is None:
            try:
                await ch.command(f"ALTER TABLE {db}.{table} REMOVE TTL")
            except Exception:  # no TTL to remove: nothing to do
                pass
        else:
            await ch.command(f"ALTER TABLE {db}.{table} MODIFY TTL {clause}")
        out[table] = clause
    return out


async def enforce_retention(ch: ClickHouse, database: str) -> None:
    """Delete now what the TTLs say is past its time (ClickHouse otherwise does it in its
    own merges)."""
    db = identifier(database)
    rows = await ch.query("SELECT name FROM system.tables WHERE database = {db:String} "
                          "AND name IN {names:Array(String)} AND engine_full LIKE '% TTL %'",
                          {"db": database, "names": list(TABLES)})  # fmt: skip
    for row in rows:  # only a table with a TTL can apply it
        await ch.command(f"ALTER TABLE {db}.{row['name']} MATERIALIZE TTL "
                         "SETTINGS mutations_sync = 2")
