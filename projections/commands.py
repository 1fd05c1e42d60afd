"""A command's outcome (`GET /api/v1/commands/{id}`): the journal knows it was accepted,
the events table knows what the worker made of it (DESIGN.md "Control verdicts")."""

from __future__ import annotations

from typing import Any

from projections.clickhouse import ClickHouse, identifier
from projections.queries import EVENT_SELECT, event_of
from projections.schema import DEFAULT_DATABASE
from streams.times import iso_ms


async def command_outcome(
    ch: ClickHouse, command_id: str, tenant: str = "default", *,
    database: str = DEFAULT_DATABASE,
) -> dict[str, Any] | None:  # fmt: skip
    """None when no command of that id was accepted. ``status``: ``pending`` until the
    worker's verdict is projected, then ``applied`` or ``rejected`` (with its reason)."""
    db = identifier(database)
    rows = await ch.query(
        "SELECT journal_pos, toUnixTimestamp64Milli(received_at) AS at, actor, action, "
        f"execution_id FROM {db}.journal WHERE has(ids, {{cid:String}}) "
        "AND tenant = {tenant:String} AND action != 'report' ORDER BY journal_pos LIMIT 1",
        {"cid": command_id, "tenant": tenant},
    )  # fmt: skip
    if not rows:
        return None
    entry = rows[0]
    eid = entry["execution_id"]
    out: dict[str, Any] = {
        "command_id": command_id, "execution_id": eid, "action": entry["action"],
        "actor": entry["actor"], "received_at": iso_ms(int(entry["at"])),
        "status": "pending", "projected": False,
    }  # fmt: skip
    verdicts = await ch.query(
        EVENT_SELECT + f"FROM {db}.events WHERE execution_id = {{eid:String}} "
        "AND tenant = {tenant:String} AND cause_id = {cid:String} "
        "ORDER BY seq LIMIT 1 BY seq LIMIT 1",
        {"eid": eid, "tenant": tenant, "cid": command_id},
    )  # fmt: skip
    if verdicts:
        event = event_of(verdicts[0]).model_dump(mode="json")
        rejected = event["event_type"] == "command_rejected"
        out.update(status="rejected" if rejected else "applied", projected=True, event=event)
        if rejected:
            out["reason"] = event["data"].get("reason")
    return out
