"""Read functions over the projections (the API's query side); they return plain data.

Every value from a caller is a bound query parameter; only the database name, checked
against the identifier pattern, is put into the SQL text. Reads that must be exact
dedupe: ``FINAL`` on the ReplacingMergeTree tables, ``LIMIT 1 BY seq`` on ``events``.
Times come back as epoch ms (``toUnixTimestamp64Milli``) and leave as ISO strings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

from projections.clickhouse import ClickHouse, identifier
from projections.schema import DEFAULT_DATABASE
from streams.contracts import Event
from streams.executors.masking import mask_secrets
from streams.state import FINAL_STATUSES, ExecutionState
from streams.times import iso_ms
from streams.view import describe

DAY_MS = 86_400_000
FINAL_SQL = "(" + ", ".join(f"'{s}'" for s in sorted(FINAL_STATUSES)) + ")"  # an SQL list
# A reported execution still running with no event since the parameter ``idle`` (epoch
# ms): one a worker may have evicted (streams/hot_set.py).
IDLE_SQL = ("(mode = 'tracked' AND status = 'running' AND "
            "updated_at < fromUnixTimestamp64Milli({idle:Int64}, 'UTC'))")  # fmt: skip
_ID_CHUNK = 5_000

EVENT_SELECT = """
    SELECT tenant, execution_id, seq, event_id, cause_id, event_type, step_id,
           toUnixTimestamp64Milli(timestamp) AS ts, message, data, workflow_id, system,
           module, labels, toUnixTimestamp64Milli(received_at) AS received
"""


def _iso(ms: int | None) -> str | None:
    return iso_ms(int(ms)) if ms is not None else None


def event_of(row: dict[str, Any]) -> Event:
    """An ``events`` row (selected as in ``EVENT_SELECT``) back as the contract's Event."""
    return Event(
        event_id=row["event_id"], cause_id=row["cause_id"], execution_id=row["execution_id"],
        seq=int(row["seq"]), event_type=row["event_type"], step_id=row["step_id"],
        timestamp=iso_ms(int(row["ts"])), message=row["message"],
        data=orjson.loads(row["data"]), workflow_id=row["workflow_id"], system=row["system"],
        module=row["module"], tenant=row["tenant"], labels=orjson.loads(row["labels"]),
        received_at=_iso(row["received"]),
    )  # fmt: skip


# ----------------------------------------------------------------------------- states


async def load_states(
    ch: ClickHouse, execution_ids: Iterable[str], *, finished_only: bool = False,
    idle_before: int | None = None, database: str = DEFAULT_DATABASE,
) -> dict[str, ExecutionState]:
    """The latest projected state of each id that has one (execution ids are global);
    with ``finished_only``, of those that have finished, and with ``idle_before`` (epoch
    ms) also of the reported ones still running with no event since then."""
    db = identifier(database)
    ids = sorted(set(execution_ids))
    where = ""
    if finished_only:
        idle = f" OR {IDLE_SQL}" if idle_before is not None else ""
        where = f" AND (status IN {FINAL_SQL}{idle})"
    states: dict[str, ExecutionState] = {}
    for i in range(0, len(ids), _ID_CHUNK):
        rows = await ch.query(
            f"SELECT execution_id, state FROM {db}.executions FINAL "
            "WHERE execution_id IN {ids:Array(String)}" + where,
            {"ids": ids[i : i + _ID_CHUNK], "idle": idle_before or 0},
        )
        for row in rows:
            states[row["execution_id"]] = ExecutionState.model_validate_json(row["state"])
    return states


async def execution_state(
    ch: ClickHouse,
    execution_id: str,
    tenant: str = "default",
    *,
    database: str = DEFAULT_DATABASE,
) -> ExecutionState | None:
    db = identifier(database)
    rows = await ch.query(
        f"SELECT state FROM {db}.executions FINAL "
        "WHERE tenant = {tenant:String} AND execution_id = {eid:String}",
        {"tenant": tenant, "eid": execution_id},
    )
    return ExecutionState.model_validate_json(rows[0]["state"]) if rows else None


async def execution_detail(
    ch: ClickHouse,
    execution_id: str,
    tenant: str = "default",
    *,
    database: str = DEFAULT_DATABASE,
) -> dict[str, Any] | None:
    """The execution-detail body (``streams.view.describe``), or None if unknown."""
    state = await execution_state(ch, execution_id, tenant, database=database)
    return describe(state) if state is not None else None


# ----------------------------------------------------------------------------- events


async def execution_events(
    ch: ClickHouse,
    execution_id: str,
    after_seq: int = 0,
    limit: int = 1000,
    tenant: str = "default",
    *,
    database: str = DEFAULT_DATABASE,
) -> list[dict[str, Any]]:
    """Events with ``seq > after_seq`` in seq order, each once (contract shape)."""
    db = identifier(database)
    rows = await ch.query(
        EVENT_SELECT + f"FROM {db}.events "
        "WHERE execution_id = {eid:String} AND tenant = {tenant:String} "
        "AND seq > {after:UInt64} ORDER BY seq LIMIT 1 BY seq LIMIT {limit:UInt32}",
        {"eid": execution_id, "tenant": tenant, "after": max(after_seq, 0), "limit": limit},
    )
    return [event_of(r).model_dump(mode="json") for r in rows]


async def archived_events(
    ch: ClickHouse, execution_id: str, after_seq: int = 0, *, database: str = DEFAULT_DATABASE
) -> list[Event]:
    """Every archived event of an execution after ``after_seq`` (any tenant), each once."""
    db = identifier(database)
    rows = await ch.query(
        EVENT_SELECT + f"FROM {db}.events "
        "WHERE execution_id = {eid:String} AND seq > {after:UInt64} ORDER BY seq LIMIT 1 BY seq",
        {"eid": execution_id, "after": max(after_seq, 0)},
    )
    return [event_of(r) for r in rows]


async def execution_logs(
    ch: ClickHouse,
    execution_id: str,
    level: str | None = None,
    limit: int = 100,
    tenant: str = "default",
    *,
    after_seq: int = 0,
    mask: Callable[[Any], Any] = mask_secrets,
    database: str = DEFAULT_DATABASE,
) -> list[dict[str, Any]]:
    """Log lines in seq order: ``log`` events (level = ``data.level``, info when absent,
    warning = warn) and each step's input, output and errors, secrets masked by ``mask``
    (the API's configured ``Masker``). Lines an executor attached to a step's outcome
    follow it under the same seq."""
    db = identifier(database)
    level_filter = "AND level = {level:String} " if level else ""
    rows = await ch.query(
        "SELECT seq, toUnixTimestamp64Milli(timestamp) AS ts, step_id, event_type, message, "
        "data, lower(JSONExtractString(data, 'level')) AS raw_level, "
        "multiIf(event_type = 'step_failed', 'error', event_type = 'step_retry_scheduled', "
        "'warn', event_type != 'log' OR raw_level = '', 'info', raw_level = 'warning', 'warn', "
        "raw_level) AS level "
        f"FROM {db}.events "
        "WHERE execution_id = {eid:String} AND tenant = {tenant:String} AND seq > {after:UInt64} "
        "AND (event_type IN ('log', 'step_failed', 'step_retry_scheduled') "
        "OR (event_type = 'step_scheduled' AND JSONHas(data, 'input')) "
        "OR (event_type = 'step_succeeded' AND JSONHas(data, 'output'))) "
        + level_filter
        + "ORDER BY seq LIMIT 1 BY seq LIMIT {limit:UInt32}",
        {"eid": execution_id, "tenant": tenant, "after": max(after_seq, 0), "limit": limit,
         "level": (level or "").lower()},
    )  # fmt: skip
    lines: list[dict[str, Any]] = []
    for r in rows:
        data = mask(orjson.loads(r["data"]))
        kind, message = _log_line(r["event_type"], r["message"], data)
        line = {"seq": int(r["seq"]), "timestamp": iso_ms(int(r["ts"])), "level": r["level"],
                "kind": kind, "message": message, "step_id": r["step_id"], "data": data}
        lines.append(line)
        executor_lines = data.get("logs") if kind != "log" else None
        for text in executor_lines or ():
            lines.append({**line, "kind": "executor", "message": str(text), "data": {}})
    return lines


def _log_line(event_type: str, message: str, data: dict[str, Any]) -> tuple[str, str]:
    """What one event says as a log line: (kind, message)."""
    if event_type == "step_scheduled":
        return "input", "input: " + orjson.dumps(data.get("input")).decode()
    if event_type == "step_succeeded":
        return "output", "output: " + orjson.dumps(data.get("output")).decode()
    if event_type == "step_failed":
        kind = data.get("error_type") or "Error"
        return "error", f"error: {kind}: {data.get('error') or message}"
    if event_type == "step_retry_scheduled":
        return "retry", message
    return "log", message


async def max_seqs(
    ch: ClickHouse, execution_ids: Iterable[str], *, database: str = DEFAULT_DATABASE
) -> dict[str, int]:
    """Highest archived seq per execution id, any tenant (ids with no events are absent)."""
    db = identifier(database)
    ids = sorted(set(execution_ids))
    out: dict[str, int] = {}
    for i in range(0, len(ids), _ID_CHUNK):
        rows = await ch.query(
            f"SELECT execution_id, max(seq) AS seq FROM {db}.events "
            "WHERE execution_id IN {ids:Array(String)} GROUP BY execution_id",
            {"ids": ids[i : i + _ID_CHUNK]},
        )
        out.update({r["execution_id"]: int(r["seq"]) for r in rows})
    return out
