"""Migrations that make reads faster (``projections.migrations`` lists them all): an
index on the events' type, the status-keyed search table, the failed attempts' arrays
that error statistics read, and finer granules for reading one execution."""

from __future__ import annotations

from projections.ddl import DEDUP, LC_ARRAY, TS

# Queue-wait statistics read the few `execution_dequeued` events of a window; the events are
# keyed by execution, so without this every statistics answer scanned the whole window.
V9 = [
    "ALTER TABLE {db}.events ADD INDEX IF NOT EXISTS idx_event_type event_type TYPE set(64) "
    "GRANULARITY 1",
    "ALTER TABLE {db}.events MATERIALIZE INDEX idx_event_type",
]

# Search pages read one JSON column per execution (`doc`, projections.by_time.search_item)
# instead of eighteen, and a search for one status of one workflow reads a slice of the key
# of executions_by_status instead of every execution in a widening time window; the rows of
# an execution whose status changed are retracted under the old one (`is_deleted`). Both
# are filled from `events` by the refold. A slice is often a few hundred rows: granules of
# 256 rows, not 8,192, keep FINAL from reading and merging ten times what it returns.
V10 = [
    "ALTER TABLE {db}.executions_by_time ADD COLUMN IF NOT EXISTS doc String",
    f"""
    CREATE TABLE IF NOT EXISTS {{db}}.executions_by_status (
        tenant LowCardinality(String),
        status LowCardinality(String),
        workflow_id LowCardinality(String),
        started_at {TS},
        execution_id String,
        last_seq UInt64,
        is_deleted UInt8,
        doc String
    ) ENGINE = ReplacingMergeTree(last_seq, is_deleted)
    ORDER BY (tenant, status, workflow_id, started_at, execution_id)
    {DEDUP}, index_granularity = 256
    """,
]

# Error statistics read the failed attempts only, a tenth of them or fewer; through the
# attempt arrays they read and joined every attempt's message and timestamps. These are
# the failed attempts' own arrays (``f_*``, ``at`` = finish, else start), computed by
# ClickHouse from the ``a_*`` arrays at insert, and for the rows already stored here.
_FAILED = "arrayFilter((v, s) -> s = 'failed', {values}, a_status)"
V11 = [
    *(f"ALTER TABLE {{db}}.executions_by_time ADD COLUMN IF NOT EXISTS f_{name} {kind} "
      f"MATERIALIZED {_FAILED.format(values=values)}"
      for name, kind, values in (
          ("step_id", "Array(LowCardinality(String))", "a_step_id"),
          ("system", LC_ARRAY, "a_system"),
          ("module", LC_ARRAY, "a_module"),
          ("error_type", LC_ARRAY, "a_error_type"),
          ("error", "Array(Nullable(String))", "a_error"),
          ("at", f"Array({TS})", "arrayMap((f, s) -> coalesce(f, s), a_finished_at, a_started_at)"),
      )),
    *(f"ALTER TABLE {{db}}.executions_by_time MATERIALIZE COLUMN f_{name} "
      "SETTINGS mutations_sync = 2"
      for name in ("step_id", "system", "module", "error_type", "error", "at")),
]  # fmt: skip

# Reading one execution (its detail, its summary, the projector's prior state) finds it
# by key and decompresses the granule it is in, in every part: ~1,800 rows of the wide
# `state` with the default granularity. `executions` is copied into a table of 256-row
# granules (~11 s per million executions) that takes its name. Rows a projector still
# running elsewhere wrote to the old table meanwhile are copied after the swap. After a
# failure the next start does it all again from the table then named `executions`; one
# between the swap and that copy loses those rows (`projections rebuild` folds them back).
V12 = [
    "DROP TABLE IF EXISTS {db}.executions_regranulated",
    "CREATE TABLE {db}.executions_regranulated AS {db}.executions "
    f"ENGINE = ReplacingMergeTree(last_seq) ORDER BY (tenant, execution_id) {DEDUP}, "
    "index_granularity = 256",
    "INSERT INTO {db}.executions_regranulated SELECT * FROM {db}.executions",
    "EXCHANGE TABLES {db}.executions AND {db}.executions_regranulated",
    "INSERT INTO {db}.executions SELECT * FROM {db}.executions_regranulated "
    "WHERE (tenant, execution_id, last_seq) NOT IN "
    "(SELECT tenant, execution_id, last_seq FROM {db}.executions)",
    "DROP TABLE {db}.executions_regranulated",
]
