"""The ClickHouse tables as versioned migrations: each a version, its DDL statements
(written with ``{db}`` for the database) and whether it refolds the derived tables.

Each statement is idempotent (``IF NOT EXISTS``), so a crash between a DDL and the
``schema_migrations`` row only re-runs harmless statements. Released migrations are
never edited: a change is a new version. Every table has
``non_replicated_deduplication_window``: with the projector's
``insert_deduplication_token`` a re-sent batch is dropped at insert time (CHDB.md §5).
``projections.schema`` applies them.
"""

from __future__ import annotations

from projections.ddl import DEDUP, LC_ARRAY, LC_NULL, TS
from projections.definition_tables import (
    V6_WORKFLOWS,
    V7_STEP_TYPES,
    V13_DEFINITIONS_WITHOUT_VIEWS,
)
from projections.read_migrations import V9, V10, V11, V12

# The columns `executions` and `executions_by_time` share (each adds its own after them).
_EXECUTION_COLUMNS = f"""\
        tenant LowCardinality(String),
        execution_id String,
        workflow_id {LC_NULL},
        plan_id Nullable(String),
        mode LowCardinality(String),
        status LowCardinality(String),
        progress Float32,
        environment {LC_NULL},
        labels Map(String, String),
        systems Array(String),
        modules Array(String),
        failed_steps UInt32,
        error_type {LC_NULL},
        started_at {TS},
        finished_at Nullable({TS}),
        duration_ms Nullable(UInt64),
        last_seq UInt64,
"""

_V1 = [
    f"""
    CREATE TABLE IF NOT EXISTS {{db}}.events (
        tenant LowCardinality(String),
        execution_id String,
        seq UInt64,
        event_id String,
        cause_id String,
        event_type LowCardinality(String),
        step_id Nullable(String),
        timestamp {TS},
        message String,
        data String,
        workflow_id {LC_NULL},
        system {LC_NULL},
        module {LC_NULL},
        labels String,
        received_at Nullable({TS}),
        INDEX idx_timestamp timestamp TYPE minmax GRANULARITY 4
    ) ENGINE = ReplacingMergeTree
    ORDER BY (execution_id, seq)
    {DEDUP}
    """,
    f"""
    CREATE TABLE IF NOT EXISTS {{db}}.executions (
{_EXECUTION_COLUMNS}        state String,
        updated_at {TS},
        INDEX idx_execution_id execution_id TYPE bloom_filter(0.01) GRANULARITY 1,
        INDEX idx_started_at started_at TYPE minmax GRANULARITY 4
    ) ENGINE = ReplacingMergeTree(last_seq)
    ORDER BY (tenant, execution_id)
    {DEDUP}
    """,
    # One row per step attempt that started; is_deleted retracts an attempt that a
    # late, earlier-timestamped report folded away (FINAL hides retracted rows).
    f"""
    CREATE TABLE IF NOT EXISTS {{db}}.step_records (
        tenant LowCardinality(String),
        execution_id String,
        workflow_id {LC_NULL},
        plan_id Nullable(String),
        step_id String,
        attempt UInt32,
        system {LC_NULL},
        module {LC_NULL},
        status LowCardinality(String),
        started_at {TS},
        finished_at Nullable({TS}),
        duration_ms Nullable(UInt64),
        error Nullable(String),
        error_type {LC_NULL},
        retryable Bool,
        version UInt64,
        is_deleted UInt8,
        INDEX idx_execution_id execution_id TYPE bloom_filter(0.01) GRANULARITY 1,
        INDEX idx_started_at started_at TYPE minmax GRANULARITY 4
    ) ENGINE = ReplacingMergeTree(version, is_deleted)
    ORDER BY (tenant, execution_id, step_id, attempt)
    {DEDUP}
    """,
    f"""
    CREATE TABLE IF NOT EXISTS {{db}}.meta (
        tenant LowCardinality(String) DEFAULT 'default',
        key String,
        value String,
        updated_at {TS}
    ) ENGINE = ReplacingMergeTree(updated_at)
    ORDER BY (tenant, key)
    {DEDUP}
    """,
]

# The journal: every accepted command and report batch, before it is appended to Kafka;
# also the audit log. `ids` are the command or report ids that events cite as cause_id.
_V2 = [
    f"""
    CREATE TABLE IF NOT EXISTS {{db}}.journal (
        journal_pos UInt64,
        received_at {TS},
        tenant LowCardinality(String),
        actor LowCardinality(String),
        action LowCardinality(String),
        execution_id String,
        ids Array(String),
        topic LowCardinality(String),
        payload String,
        INDEX idx_execution execution_id TYPE bloom_filter(0.01) GRANULARITY 1,
        INDEX idx_received received_at TYPE minmax GRANULARITY 4
    ) ENGINE = MergeTree
    ORDER BY journal_pos
    {DEDUP}
    """,
]

# Commands are looked up by id (`GET /commands/{id}`): skip journal granules without it.
_V3 = [
    "ALTER TABLE {db}.journal ADD INDEX IF NOT EXISTS idx_ids ids TYPE bloom_filter(0.01) "
    "GRANULARITY 1",
    "ALTER TABLE {db}.journal MATERIALIZE INDEX idx_ids",
]


def _rekeyed(ddl: str, key: str, new_key: str) -> str:
    """``ddl`` (a CREATE TABLE ... ORDER BY ``key``) with ``new_key`` as its sort key."""
    if f"ORDER BY {key}" not in ddl:
        raise ValueError(f"no ORDER BY {key} in the DDL")
    return ddl.replace(f"ORDER BY {key}", f"ORDER BY {new_key}")


# Reads ask for time windows, and a table keyed by execution id answers them by reading
# every row: step_records is re-keyed by start time, and executions_by_time holds the
# executions in start order for search, summaries and statistics (projections.by_time).
# Both are filled from `events` by a rebuild when the migration is applied to a database
# that has some (a crash before the version is recorded runs it all again).
_V4 = [
    "DROP TABLE IF EXISTS {db}.step_records",
    _rekeyed(_V1[2], "(tenant, execution_id, step_id, attempt)",
             "(tenant, started_at, execution_id, step_id, attempt)"),
    f"""
    CREATE TABLE IF NOT EXISTS {{db}}.executions_by_time (
{_EXECUTION_COLUMNS}        is_deleted UInt8,
        steps_total UInt32,
        steps_succeeded UInt32,
        steps_failed UInt32,
        steps_running UInt32,
        step_ids Array(String),
        error_types Array(String),
        a_step_id Array(LowCardinality(String)),
        a_attempt Array(UInt32),
        a_system {LC_ARRAY},
        a_module {LC_ARRAY},
        a_status Array(LowCardinality(String)),
        a_started_at Array({TS}),
        a_finished_at Array(Nullable({TS})),
        a_duration_ms Array(Nullable(UInt64)),
        a_error_type {LC_ARRAY},
        a_error Array(Nullable(String)),
        a_wait_ms Array(Nullable(UInt64)),
        INDEX idx_execution_id execution_id TYPE bloom_filter(0.01) GRANULARITY 1
    ) ENGINE = ReplacingMergeTree(last_seq, is_deleted)
    ORDER BY (tenant, started_at, execution_id)
    {DEDUP}
    """,
]

# Dead letters (projections.dead_letters): archived from the dead-letters topic by the
# projector, so that they outlive the broker; a redrive writes a newer version of the row.
_V5 = [
    f"""
    CREATE TABLE IF NOT EXISTS {{db}}.dead_letters (
        id String,
        execution_id String,
        reason String,
        topic LowCardinality(String),
        partition UInt32,
        offset UInt64,
        value_b64 String,
        at {TS},
        redriven_at Nullable({TS}),
        redrives UInt32,
        version UInt64
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY id
    {DEDUP}
    """,
]

# Export progress every API replica can answer (`GET /exports/{id}`), not only the one that
# streams it: a row at the start, every few seconds, and at the end; a week is kept.
_V8 = [
    f"""
    CREATE TABLE IF NOT EXISTS {{db}}.exports (
        export_id String,
        tenant LowCardinality(String),
        kind LowCardinality(String),
        format LowCardinality(String),
        rows UInt64,
        finished UInt8,
        error Nullable(String),
        started_at {TS},
        finished_at Nullable({TS}),
        updated_at UInt64
    ) ENGINE = ReplacingMergeTree(updated_at)
    ORDER BY export_id
    TTL toDateTime(started_at) + INTERVAL 7 DAY
    """,
]

# (version, statements, refold): a refold migration adds a derived table that a rebuild
# from `events` fills (projections.rebuild), before the version is recorded.
MIGRATIONS: list[tuple[int, list[str], bool]] = [
    (1, _V1, False),
    (2, _V2, False),
    (3, _V3, False),
    (4, _V4, True),
    (5, _V5, False),
    (6, V6_WORKFLOWS, False),
    (7, V7_STEP_TYPES, False),
    (8, _V8, False),
    (9, V9, False),
    (10, V10, True),
    (11, V11, False),
    (12, V12, False),
    (13, V13_DEFINITIONS_WITHOUT_VIEWS, False),
]
