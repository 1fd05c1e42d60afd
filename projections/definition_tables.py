"""The saved definitions (workflows, HTTP-registered step types) as versioned rows, each
made from the journal row of its change: migrations 6 and 7 create the tables
(``projections.migrations`` lists them with the others), ``derive`` writes the rows.

Until migration 13 a materialized view on the journal wrote them. ClickHouse runs a view
on every journal insert, whatever it holds: ~5 ms of CPU per commit for changes that come
a few times a day (deploy/CAPACITY.md). Now the journal writer calls ``derive`` after a
commit that holds such a change, before it answers; ``repair`` writes the rows a crash
between the two left out, when the writer starts.
"""

from __future__ import annotations

from projections.clickhouse import ClickHouse
from projections.ddl import DEDUP, TS

# The journal rows of each table's changes, as its rows ({db}: the database).
_WORKFLOW_ROWS = """SELECT tenant, execution_id AS workflow_id,
           toUInt32(JSONExtractUInt(payload, 'version')) AS version, journal_pos,
           received_at AS saved_at, actor, toUInt8(action = 'workflow.delete') AS deleted,
           JSONExtractString(payload, 'name') AS name,
           JSONExtract(payload, 'tags', 'Array(String)') AS tags,
           toUInt8(JSONExtractBool(payload, 'is_active')) AS is_active, payload AS document
    FROM {db}.journal WHERE action IN ('workflow.save', 'workflow.delete')"""
_STEP_TYPE_ROWS = """SELECT tenant, execution_id AS name, journal_pos, received_at AS saved_at,
           actor, toUInt8(action = 'step_type.delete') AS deleted, payload AS document
    FROM {db}.journal WHERE action IN ('step_type.register', 'step_type.delete')"""

# table: (its rows from the journal, the journal actions they come from, its key)
_DERIVED = {
    "workflows": (_WORKFLOW_ROWS, frozenset({"workflow.save", "workflow.delete"}),
                  ("tenant", "workflow_id", "version")),
    "step_types": (_STEP_TYPE_ROWS, frozenset({"step_type.register", "step_type.delete"}),
                   ("tenant", "name")),
}
ACTIONS = frozenset().union(*(actions for _, actions, _ in _DERIVED.values()))

# Saved workflows (api/workflows.py): a change is journaled like every accepted command
# (topic-less: nothing consumes it from Kafka) and becomes a versioned row before the
# request is answered, so a saved version is never only in memory.
V6_WORKFLOWS = [
    f"""
    CREATE TABLE IF NOT EXISTS {{db}}.workflows (
        tenant LowCardinality(String),
        workflow_id String,
        version UInt32,
        journal_pos UInt64,
        saved_at {TS},
        actor LowCardinality(String),
        deleted UInt8,
        name String,
        tags Array(String),
        is_active UInt8,
        document String
    ) ENGINE = ReplacingMergeTree(journal_pos)
    ORDER BY (tenant, workflow_id, version)
    {DEDUP}
    """,
    "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.workflows_mv TO {db}.workflows AS\n    "
    + _WORKFLOW_ROWS,
]

# Step types registered over HTTP (api/step_types.py): journaled, topic-less, the same way.
V7_STEP_TYPES = [
    f"""
    CREATE TABLE IF NOT EXISTS {{db}}.step_types (
        tenant LowCardinality(String),
        name String,
        journal_pos UInt64,
        saved_at {TS},
        actor LowCardinality(String),
        deleted UInt8,
        document String
    ) ENGINE = ReplacingMergeTree(journal_pos)
    ORDER BY (tenant, name)
    {DEDUP}
    """,
    "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.step_types_mv TO {db}.step_types AS\n    "
    + _STEP_TYPE_ROWS,
]


def _missing(db: str) -> list[str]:
    """Statements writing each journaled change that has no row, nor a newer row of its
    key (a newer one replaces it when parts merge)."""
    out = []
    for table, (rows, _, key) in _DERIVED.items():
        on = " AND ".join(f"j.{k} = t.{k}" for k in key)
        out.append(f"INSERT INTO {db}.{table} SELECT j.* FROM ({rows.format(db=db)}) AS j "
                   f"LEFT JOIN (SELECT {', '.join(key)}, max(journal_pos) AS top "
                   f"FROM {db}.{table} GROUP BY {', '.join(key)}) AS t ON {on} "
                   "WHERE j.journal_pos > t.top")
    return out


# The views' work moves to the journal writer: drop them, and write what a writer of an
# older version (or a crash) left without its row.
V13_DEFINITIONS_WITHOUT_VIEWS = [
    "DROP VIEW IF EXISTS {db}.workflows_mv",
    "DROP VIEW IF EXISTS {db}.step_types_mv",
    *_missing("{db}"),
]


async def derive(ch: ClickHouse, db: str, actions: list[str], first: int, last: int) -> None:
    """Write the rows of the changes journaled at positions ``first``..``last`` (one
    commit, whose entries have ``actions``); a table with no change in it is skipped."""
    for table, (rows, of, _) in _DERIVED.items():
        if of.intersection(actions):
            await ch.command(f"INSERT INTO {db}.{table} {rows.format(db=db)} "
                             "AND journal_pos BETWEEN {first:UInt64} AND {last:UInt64}",
                             {"first": first, "last": last})  # fmt: skip


async def repair(ch: ClickHouse, db: str) -> None:
    """Write the rows of journaled changes that have none (a crash between the journal's
    insert and ``derive``)."""
    for statement in _missing(db):
        await ch.command(statement)
