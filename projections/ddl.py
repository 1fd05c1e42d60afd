"""What every table's DDL shares: the time column type and the insert dedup setting
(CHDB.md §5: with the projector's ``insert_deduplication_token`` a re-sent batch is dropped
at insert time)."""

from __future__ import annotations

DEDUP = "SETTINGS non_replicated_deduplication_window = 1000"
TS = "DateTime64(3, 'UTC')"  # every time column
LC_NULL = "LowCardinality(Nullable(String))"
LC_ARRAY = f"Array({LC_NULL})"
