"""Reading saved workflows: the versioned rows the journal's workflow changes become
(migration 6). A delete is a version too (``deleted``); a deleted workflow reads as gone."""

from __future__ import annotations

from typing import Any

import orjson

from projections.clickhouse import ClickHouse, identifier


def _document(row: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(row["document"])
    return doc


async def latest(
    ch: ClickHouse, tenant: str, workflow_id: str, *, database: str
) -> dict[str, Any] | None:
    """The newest version (a delete marker included: ``deleted`` true), or None."""
    rows = await ch.query(
        f"SELECT document FROM {identifier(database)}.workflows FINAL "
        "WHERE tenant = {tenant:String} AND workflow_id = {wid:String} "
        "ORDER BY version DESC LIMIT 1", {"tenant": tenant, "wid": workflow_id})  # fmt: skip
    return _document(rows[0]) if rows else None


async def version(
    ch: ClickHouse, tenant: str, workflow_id: str, number: int, *, database: str
) -> dict[str, Any] | None:
    rows = await ch.query(
        f"SELECT document FROM {identifier(database)}.workflows FINAL "
        "WHERE tenant = {tenant:String} AND workflow_id = {wid:String} "
        "AND version = {v:UInt32} AND deleted = 0 LIMIT 1",
        {"tenant": tenant, "wid": workflow_id, "v": number})  # fmt: skip
    return _document(rows[0]) if rows else None


async def versions(
    ch: ClickHouse, tenant: str, workflow_id: str, *, database: str
) -> list[dict[str, Any]]:
    """Every saved version, oldest first: number, when, who, name, tags (not the body)."""
    rows = await ch.query(
        "SELECT version, toUnixTimestamp64Milli(saved_at) AS at, actor, deleted, name, tags "
        f"FROM {identifier(database)}.workflows FINAL "
        "WHERE tenant = {tenant:String} AND workflow_id = {wid:String} ORDER BY version",
        {"tenant": tenant, "wid": workflow_id})  # fmt: skip
    return [{"version": int(r["version"]), "saved_at_ms": int(r["at"]), "saved_by": r["actor"],
             "deleted": bool(r["deleted"]), "name": r["name"], "tags": list(r["tags"])}
            for r in rows]  # fmt: skip


async def current(
    ch: ClickHouse, tenant: str, *, database: str, name: str | None = None,
    tag: str | None = None, ids: list[str] | None = None, after: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:  # fmt: skip
    """The newest version of each workflow that is not deleted, by id, after ``after``;
    ``name`` matches part of the name (any case), ``tag`` one of the tags."""
    having = ["NOT d"]
    params: dict[str, Any] = {"tenant": tenant, "limit": limit, "after": after or ""}
    if name:
        having.append("positionCaseInsensitiveUTF8(n, {name:String}) > 0")
        params["name"] = name
    if tag:
        having.append("has(t, {tag:String})")
        params["tag"] = tag
    where = "tenant = {tenant:String} AND workflow_id > {after:String}"
    if ids is not None:
        where += " AND workflow_id IN {ids:Array(String)}"
        params["ids"] = ids
    rows = await ch.query(
        "SELECT workflow_id, argMax(document, version) AS document, argMax(deleted, version) "
        "AS d, argMax(name, version) AS n, argMax(tags, version) AS t "
        f"FROM {identifier(database)}.workflows FINAL WHERE {where} GROUP BY workflow_id "
        f"HAVING {' AND '.join(having)} ORDER BY workflow_id LIMIT {{limit:UInt32}}", params)
    return [_document(r) for r in rows]
