"""Rebuild the derived tables from ``events`` (`runledger projections rebuild`).

``events`` is the archive; ``executions`` and ``step_records`` are folds of it. A rebuild
reads every event once, in (execution_id, seq) order and in pages, folds each page with
the projector's own ``project`` onto the state carried over from the page before, and
writes the rows through ``write_projection`` into new ``<table>__rebuild`` tables. Each
is then swapped in with ``EXCHANGE TABLES``, atomically: a reader sees the old rows or
the new, never a half-built table (the API reads ``executions`` to rehydrate late
messages, so an empty window would not be harmless). Materialized views that read a
derived table get their target refilled from their own SELECT and swapped the same way.

Nothing else may write the derived tables meanwhile: in the API process the caller holds
the projector paused (``Projector.paused``); offline nothing else has the data dir open.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from projections.clickhouse import ClickHouse, identifier
from projections.queries import EVENT_SELECT, event_of
from projections.rows import project
from projections.writer import write_projection
from streams.state import ExecutionState
from streams.times import iso_ms

log = logging.getLogger(__name__)

DERIVED = ("executions", "step_records", "executions_by_time", "executions_by_status")
SUFFIX = "__rebuild"
PAGE_EVENTS = 10_000
_TO_TABLE = re.compile(r"\bTO\s+`?(\w+)`?\.`?(\w+)`?")


def _now_iso() -> str:
    return iso_ms(int(time.time() * 1000))


@dataclass
class RebuildRun:
    """A rebuild's progress, as `GET /api/v1/admin/projections/rebuild` shows it."""

    rebuild_id: str
    state: str = "running"  # running | finished | failed
    total_events: int = 0
    events: int = 0
    executions: int = 0
    tables: tuple[str, ...] = ()
    started_at: str = ""
    finished_at: str | None = None
    error: str | None = None

    @classmethod
    def new(cls) -> RebuildRun:
        return cls(rebuild_id=f"rebuild_{uuid.uuid4().hex[:12]}", started_at=_now_iso())

    @property
    def running(self) -> bool:
        return self.state == "running"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "tables": list(self.tables)}


async def _views_on(ch: ClickHouse, db: str, sources: tuple[str, ...]) -> list[tuple[str, str]]:
    """(target table, SELECT) of each materialized view in ``db`` reading one of ``sources``."""
    rows = await ch.query(
        "SELECT name, dependencies_table FROM system.tables "
        "WHERE database = {db:String} AND name IN {names:Array(String)}",
        {"db": db, "names": list(sources)},
    )
    view_names = sorted({v for r in rows for v in r["dependencies_table"]})
    if not view_names:
        return []
    views = await ch.query(
        "SELECT name, as_select, create_table_query FROM system.tables "
        "WHERE database = {db:String} AND name IN {names:Array(String)}",
        {"db": db, "names": view_names},
    )
    out = []
    for v in views:
        to = _TO_TABLE.search(v["create_table_query"])
        if to is None or to.group(1) != db:
            log.warning("rebuild: view %s.%s has no TO table in %s; left as it is",
                        db, v["name"], db)  # fmt: skip
            continue
        out.append((to.group(2), v["as_select"]))
    return out


async def _shadow(ch: ClickHouse, db: str, table: str) -> str:
    shadow = identifier(table + SUFFIX)
    await ch.command(f"DROP TABLE IF EXISTS {db}.{shadow}")
    await ch.command(f"CREATE TABLE {db}.{shadow} AS {db}.{identifier(table)}")
    return shadow


async def _swap_in(ch: ClickHouse, db: str, table: str) -> None:
    await ch.command(f"EXCHANGE TABLES {db}.{table} AND {db}.{table}{SUFFIX}")
    await ch.command(f"DROP TABLE IF EXISTS {db}.{table}{SUFFIX}")


async def _fold_events(
    ch: ClickHouse, db: str, derived: list[str], run: RebuildRun, page_events: int,
    on_progress: Callable[[RebuildRun], None] | None,
) -> None:  # fmt: skip
    tables = {t: t + SUFFIX for t in derived}
    carried: dict[str, ExecutionState | None] = {}
    after: tuple[str, int] = ("", 0)
    while True:
        rows = await ch.query(
            EVENT_SELECT + f"FROM {db}.events FINAL "
            "WHERE execution_id >= {eid:String} AND (execution_id, seq) > ({eid:String}, "
            "{seq:UInt64}) ORDER BY execution_id, seq LIMIT {n:UInt32}",
            {"eid": after[0], "seq": after[1], "n": page_events},
        )
        if not rows:
            return
        batch = [event_of(r) for r in rows]
        proj = project(batch, carried)
        await write_projection(ch, proj, database=db, tables=tables)
        last = batch[-1].execution_id
        run.executions += len({e.execution_id for e in batch} - carried.keys())
        # Only the page's last execution can go on in the next page.
        carried = {last: proj.states.get(last) or carried.get(last)}
        after = (last, batch[-1].seq)
        run.events += len(batch)
        if on_progress is not None:
            on_progress(run)


async def rebuild_projections(
    ch: ClickHouse, database: str, run: RebuildRun | None = None, *,
    page_events: int = PAGE_EVENTS, on_progress: Callable[[RebuildRun], None] | None = None,
) -> RebuildRun:  # fmt: skip
    """Rebuild ``executions``, ``step_records`` and the views on them from ``events``;
    ``run`` is updated as it goes (and returned). Raises what failed, after marking it."""
    db = identifier(database)
    run = run or RebuildRun.new()
    shadows: list[str] = []
    try:
        # A migration's refold runs before the later migrations made their tables.
        present = await ch.query("SELECT name FROM system.tables WHERE database = {db:String}",
                                 {"db": db})  # fmt: skip
        derived = [t for t in DERIVED if t in {r["name"] for r in present}]
        views = await _views_on(ch, db, tuple(derived))
        run.tables = (*derived, *(target for target, _ in views))
        count = await ch.query(f"SELECT count() AS n FROM {db}.events FINAL")
        run.total_events = int(count[0]["n"])
        for table in derived:
            shadows.append(await _shadow(ch, db, table))
        if on_progress is not None:
            on_progress(run)
        await _fold_events(ch, db, derived, run, page_events, on_progress)
        for table in derived:
            await _swap_in(ch, db, table)
        for target, select in views:  # their SELECT now reads the rebuilt tables
            shadow = await _shadow(ch, db, target)
            shadows.append(shadow)
            described = await ch.query(f"DESCRIBE ({select})")
            cols = ", ".join(f"`{r['name']}`" for r in described)
            await ch.command(f"INSERT INTO {db}.{shadow} ({cols}) SELECT {cols} FROM ({select})")
            await _swap_in(ch, db, target)
    except BaseException as exc:
        run.state, run.error = "failed", repr(exc)
        run.finished_at = _now_iso()
        for shadow in shadows:
            try:
                await ch.command(f"DROP TABLE IF EXISTS {db}.{shadow}")
            except Exception:
                log.exception("rebuild: could not drop %s.%s", db, shadow)
        raise
    run.state, run.finished_at = "finished", _now_iso()
    log.info("rebuilt %s from %d events of %d executions in %s", ", ".join(run.tables),
             run.events, run.executions, db)  # fmt: skip
    if on_progress is not None:
        on_progress(run)
    return run
