"""Migrations 6 and 7: the saved definitions (workflows, HTTP-registered step types) as
versioned rows, each filled by a materialized view from the journal rows of its changes
(``projections.migrations`` lists them with the others)."""

from __future__ import annotations

from projections.ddl import DEDUP, TS

# Saved workflows (api/workflows.py): a change is journaled like every accepted command
# (topic-less: nothing consumes it from Kafka), and this view turns each such journal row
# into a versioned row, in the same insert, so a saved version is never only in memory.
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
    """
    CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.workflows_mv TO {db}.workflows AS
    SELECT tenant, execution_id AS workflow_id,
           toUInt32(JSONExtractUInt(payload, 'version')) AS version, journal_pos,
           received_at AS saved_at, actor, toUInt8(action = 'workflow.delete') AS deleted,
           JSONExtractString(payload, 'name') AS name,
           JSONExtract(payload, 'tags', 'Array(String)') AS tags,
           toUInt8(JSONExtractBool(payload, 'is_active')) AS is_active, payload AS document
    FROM {db}.journal WHERE action IN ('workflow.save', 'workflow.delete')
    """,
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
    """
    CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.step_types_mv TO {db}.step_types AS
    SELECT tenant, execution_id AS name, journal_pos, received_at AS saved_at, actor,
           toUInt8(action = 'step_type.delete') AS deleted, payload AS document
    FROM {db}.journal WHERE action IN ('step_type.register', 'step_type.delete')
    """,
]
