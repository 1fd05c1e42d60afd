"""Dead letters: messages the worker could not decode or apply, with the reason and the
original bytes (``streams.contracts.DeadLetter`` on ``runledger.dead-letters``).

The projector archives each one into ``dead_letters`` (the embedded broker forgets its
topics on a restart; ClickHouse does not). `GET /api/v1/dead-letters` lists them newest
first; a redrive appends the original bytes again to the topic they were read from (in
today's generation) and writes a newer version of the row (``redriven_at``,
``redrives``). A redriven message that fails again comes back as a new dead letter.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson
from pydantic import ValidationError

from projections.clickhouse import ClickHouse, identifier
from projections.tracking import decode_key, encode_cursor
from runledger.kafka import logical_topic
from streams.contracts import DeadLetter
from streams.executors.masking import Masker
from streams.times import iso_ms

COLUMNS = ("id", "execution_id", "reason", "topic", "partition", "offset", "value_b64", "at",
           "redriven_at", "redrives", "version")  # fmt: skip
_SELECT = ("SELECT id, execution_id, reason, topic, partition, offset, value_b64, "
           "toUnixTimestamp64Milli(at) AS at_ms, toUnixTimestamp64Milli(redriven_at) AS "
           "redriven_ms, redrives ")  # fmt: skip


def row_of(value: bytes | None) -> tuple[Any, ...] | None:
    """The table row of a dead-letters record; None if it is not one (logged by the caller).
    The id depends only on the record, so a re-delivered record replaces itself."""
    try:
        dl = DeadLetter.model_validate_json(value or b"")
    except ValidationError:
        return None
    digest = hashlib.blake2b(f"{dl.topic}|{dl.partition}|{dl.offset}|{dl.at}".encode(),
                             digest_size=8).hexdigest()  # fmt: skip
    return (f"dl_{digest}", dl.key, dl.reason, dl.topic, dl.partition, dl.offset,
            dl.value_b64, dl.at, None, 0, dl.at)  # fmt: skip


def redrive_row(row: dict[str, Any], at_ms: int) -> tuple[dict[str, Any], tuple[Any, ...]]:
    """``row`` (as read by ``get``) redriven at ``at_ms``: as ``get`` would read it now,
    and the newer table row that records it."""
    after = {**row, "redriven_ms": at_ms, "redrives": int(row["redrives"]) + 1}
    return after, (row["id"], row["execution_id"], row["reason"], row["topic"],
                   row["partition"], row["offset"], row["value_b64"], row["at_ms"], at_ms,
                   after["redrives"], max(at_ms, int(row["at_ms"]) + 1))  # fmt: skip


async def insert(ch: ClickHouse, database: str, rows: list[tuple[Any, ...]]) -> None:
    """A re-sent row has the same id and version: FINAL reads show it once."""
    if rows:
        columns = [list(c) for c in zip(*rows, strict=True)]
        await ch.insert("dead_letters", columns, COLUMNS, database=database)


async def get(ch: ClickHouse, database: str, dead_letter_id: str) -> dict[str, Any] | None:
    rows = await ch.query(_SELECT + f"FROM {identifier(database)}.dead_letters FINAL "
                          "WHERE id = {id:String}", {"id": dead_letter_id})  # fmt: skip
    return rows[0] if rows else None


def original_bytes(row: dict[str, Any]) -> bytes:
    return base64.b64decode(row["value_b64"])


def view(row: dict[str, Any], masker: Masker) -> dict[str, Any]:
    """What the API shows: the original message as text (JSON with secrets masked)."""
    raw = original_bytes(row)
    try:
        message: Any = masker(orjson.loads(raw))
    except orjson.JSONDecodeError:
        message = raw.decode("utf-8", "replace")
    redriven_ms = row["redriven_ms"]
    return {
        "id": row["id"], "execution_id": row["execution_id"] or None, "reason": row["reason"],
        "topic": logical_topic(row["topic"]), "partition": int(row["partition"]),
        "offset": int(row["offset"]), "at": iso_ms(int(row["at_ms"])),
        "redriven_at": iso_ms(int(redriven_ms)) if redriven_ms is not None else None,
        "redrives": int(row["redrives"]), "bytes": len(raw), "message": message,
    }  # fmt: skip


async def listing(
    ch: ClickHouse, database: str, masker: Masker, *, execution_id: str | None = None,
    limit: int = 50, cursor: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Newest first, ``limit`` a page; the cursor is the last item's (at, id). Raises
    ValueError for a cursor this function did not make."""
    where = ["1"]
    params: dict[str, Any] = {"limit": limit}
    if execution_id is not None:
        where.append("execution_id = {eid:String}")
        params["eid"] = execution_id
    if cursor:
        at, last_id = decode_key(cursor, (int, str))
        where.append("(toUnixTimestamp64Milli(at), id) < ({c_at:Int64}, {c_id:String})")
        params.update(c_at=at, c_id=last_id)
    rows = await ch.query(
        _SELECT + f"FROM {identifier(database)}.dead_letters FINAL WHERE {' AND '.join(where)} "
        "ORDER BY at DESC, id DESC LIMIT {limit:UInt32}", params)  # fmt: skip
    more = len(rows) == limit
    return {"items": [view(r, masker) for r in rows],
            "next_cursor": encode_cursor(int(rows[-1]["at_ms"]), rows[-1]["id"]) if more
            else None}  # fmt: skip
