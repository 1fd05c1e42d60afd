"""Rebuild a broker's contents from ClickHouse (the journal plus the events archive).

Run by the API process at start when the broker's topics are empty but ClickHouse has
data (the embedded broker keeps nothing across a restart), and by `runledger restore`
against a fresh Kafka cluster: one code path. Steps:

1. every unfinished execution (but reported ones idle past RUNLEDGER_IDLE_TTL, which a
   worker would not hold either: streams/hot_set.py), and every execution an entry below
   touches, gets its archived state (the fold of its archived events) as a `rehydrate`;
2. the journal entries that no archived event cites as its cause are appended again,
   in `journal_pos` order (their ids make a repeat harmless).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import reduce

import orjson
from aiokafka import AIOKafkaProducer, TopicPartition

from projections import queries
from projections.clickhouse import ClickHouse, identifier
from runledger.kafka import changelog_topic, logical_topic, make_consumer
from runledger.settings import Settings
from streams.admission_contracts import ADMISSION_KEY, AdmissionReset, Enqueue, Occupy
from streams.contracts import Rehydrate
from streams.machine import evolve
from streams.queueing import scopes_of
from streams.state import ExecutionState

log = logging.getLogger("runledger.restore")
CHUNK = 5_000
Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass
class RestoreReport:
    executions: int = 0
    entries: int = 0
    seconds: float = 0.0
    first_pos: int | None = None  # the lowest journal_pos appended again

    @property
    def entries_per_s(self) -> float:
        return (self.executions + self.entries) / self.seconds if self.seconds else 0.0


async def broker_is_empty(settings: Settings) -> bool:
    """True when none of Runledger's topics holds a record (a fresh embedded broker)."""
    names = [settings.topic(t) for t in ("commands", "step-events", "events")]
    names.append(changelog_topic(settings))
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in names
               for p in (consumer.partitions_for_topic(t) or ())]  # fmt: skip
        ends = await consumer.end_offsets(tps) if tps else {}
        return all(v == 0 for v in ends.values())
    finally:
        await consumer.stop()


async def archive_has_data(ch: ClickHouse, database: str) -> bool:
    db = identifier(database)
    rows = await ch.query(f"SELECT (SELECT count() FROM {db}.journal) + "
                          f"(SELECT count() FROM {db}.events) AS n")  # fmt: skip
    return bool(rows and int(rows[0]["n"]) > 0)


async def uncited_entries(
    ch: ClickHouse, database: str, *, after_pos: int = 0, before_ms: int | None = None
) -> list[dict]:
    """Journal entries (after ``after_pos``, received before ``before_ms``) with an id that
    no archived event names as its cause. Redrives are left out: they name a dead letter,
    and the entry it came from is appended again by this rule if it never applied."""
    db = identifier(database)
    scope = "journal_pos > {after:UInt64}"
    if before_ms is not None:
        scope += " AND received_at < fromUnixTimestamp64Milli({before:Int64}, 'UTC')"
    return await ch.query(
        "SELECT journal_pos, any(topic) AS topic, any(execution_id) AS execution_id, "
        "any(tenant) AS tenant, any(payload) AS payload "
        f"FROM {db}.journal ARRAY JOIN ids AS id WHERE {scope} AND action != 'redrive' "
        f"AND id NOT IN (SELECT cause_id FROM {db}.events WHERE execution_id IN "
        f"(SELECT execution_id FROM {db}.journal WHERE {scope})) "
        "GROUP BY journal_pos ORDER BY journal_pos",
        {"after": after_pos, "before": before_ms or 0},
    )


async def archived_states(
    ch: ClickHouse, database: str, execution_ids: list[str]
) -> AsyncIterator[list[tuple[str, str, bytes]]]:
    """Pages of (execution id, tenant, state JSON): the projected state as stored, or —
    where the projector was behind its own archive — the fold of the archived events.
    States stay JSON text: parsing 100k of them took most of a restore's time."""
    db = identifier(database)
    for i in range(0, len(execution_ids), CHUNK):
        chunk = execution_ids[i:i + CHUNK]
        rows = await ch.query(
            f"SELECT execution_id, tenant, last_seq, state FROM {db}.executions FINAL "
            "WHERE execution_id IN {ids:Array(String)}", {"ids": chunk})  # fmt: skip
        stored = {r["execution_id"]: r for r in rows}
        tops = await queries.max_seqs(ch, chunk, database=database)
        page = []
        for eid in chunk:
            row, top = stored.get(eid), tops.get(eid, 0)
            if row is not None and int(row["last_seq"]) >= top:
                page.append((eid, row["tenant"], row["state"].encode()))
            elif top:
                state = ExecutionState.model_validate_json(row["state"]) if row else None
                events = await queries.archived_events(
                    ch, eid, state.seq if state else 0, database=database)
                folded = reduce(evolve, events, state)
                if folded is not None:
                    page.append((eid, folded.tenant, folded.model_dump_json().encode()))
        yield page


async def unfinished_execution_ids(
    ch: ClickHouse, database: str, idle_before: int | None = None
) -> list[str]:
    """Every execution that has not finished; with ``idle_before`` (epoch ms), not those
    reported ones idle since before then, which a worker would have evicted by now (their
    next message or the idle sweep brings them back: streams/hot_set.py)."""
    db = identifier(database)
    idle = "" if idle_before is None else f" AND NOT {queries.IDLE_SQL}"
    rows = await ch.query(
        f"SELECT execution_id FROM {db}.executions FINAL WHERE status NOT IN {queries.FINAL_SQL}"
        + idle, {"idle": idle_before or 0})  # fmt: skip
    return [r["execution_id"] for r in rows]


async def restore(
    settings: Settings, ch: ClickHouse, producer: AIOKafkaProducer, *, database: str,
    progress: Progress | None = None, after_pos: int = 0,
) -> RestoreReport:  # fmt: skip
    """Restore into ``settings``' topics; only journal entries after ``after_pos`` are
    considered (a generation switch knows that older ones were read or cited)."""
    t0 = time.monotonic()
    report = RestoreReport()
    entries = await uncited_entries(ch, database, after_pos=after_pos)
    touched = {e["execution_id"] for e in entries}
    idle_before = (int((time.time() - settings.idle_ttl) * 1000) if settings.idle_ttl
                   else None)  # fmt: skip
    targets = sorted(set(await unfinished_execution_ids(ch, database, idle_before)) | touched)
    log.info("restore: %d executions to rehydrate, %d journal entries to append again",
             len(targets), len(entries))  # fmt: skip
    queue: list[ExecutionState] = []
    report.executions = await _rehydrate(settings, ch, producer, targets, database, progress,
                                         queue=queue)  # fmt: skip
    await _reset_admission(settings, producer, queue)
    await _append(settings, producer, entries, progress)
    report.entries = len(entries)
    report.first_pos = int(entries[0]["journal_pos"]) if entries else None
    report.seconds = time.monotonic() - t0
    log.info("restore done: %d executions, %d entries in %.2fs", report.executions,
             report.entries, report.seconds)  # fmt: skip
    return report


async def reappend(
    settings: Settings, ch: ClickHouse, producer: AIOKafkaProducer, entries: list[dict], *,
    database: str,
) -> None:
    """Append ``entries`` again, their executions' archived states in front of them."""
    await rehydrate(settings, ch, producer, sorted({e["execution_id"] for e in entries}),
                    database=database)  # fmt: skip
    await _append(settings, producer, entries, None)


async def rehydrate(
    settings: Settings, ch: ClickHouse, producer: AIOKafkaProducer, execution_ids: list[str],
    *, database: str,
) -> int:
    """Send each execution's archived state (a worker that holds a newer one ignores it)."""
    return await _rehydrate(settings, ch, producer, execution_ids, database, None)


async def _rehydrate(
    settings: Settings, ch: ClickHouse, producer: AIOKafkaProducer, execution_ids: list[str],
    database: str, progress: Progress | None, sent: set[str] | None = None,
    queue: list[ExecutionState] | None = None,
) -> int:
    """Send each execution's archived state. A parent of sub-executions goes after its
    children (theirs first, recursively): its restored state sends their starts again,
    and a child must already be there to ignore that start (or, finished, to answer it
    with its outcome) rather than run again."""
    # The worker reads both input topics and their relative order is not kept: the state
    # goes on each, so whatever follows on either topic finds it there first.
    inputs = (settings.topic("commands"), settings.topic("step-events"))
    now = int(time.time() * 1000)
    sent = set() if sent is None else sent
    parents: list[tuple[str, str, bytes]] = []
    children: set[str] = set()

    def records(eid: str, tenant: str, state: bytes) -> list[tuple[str, str, bytes]]:
        head = Rehydrate(execution_id=eid, tenant=tenant, received_at=now, state={})
        body = orjson.dumps({**head.model_dump(mode="json"),
                             "state": orjson.Fragment(state)})  # fmt: skip
        return [(topic, eid, body) for topic in inputs]

    async for page in archived_states(ch, database, execution_ids):
        items = []
        for eid, tenant, state in page:
            if queue is not None and b'"admission":true' in state:
                queue.append(ExecutionState.model_validate_json(state))
            kids = _children(state)
            if kids:
                parents.append((eid, tenant, state))
                children |= kids
            else:
                items.append(records(eid, tenant, state))
                sent.add(eid)
        await _send_in_order(producer, items, "executions", progress, done=len(sent),
                             total=len(execution_ids))  # fmt: skip
    waiting = {eid for eid, _, _ in parents}
    if children - sent - waiting:
        await _rehydrate(settings, ch, producer, sorted(children - sent - waiting), database,
                         None, sent, queue)  # fmt: skip
    # Deepest first: a child's id extends its parent's.
    parents.sort(key=lambda p: -len(p[0]))
    await _send_in_order(producer, [records(*p) for p in parents], "executions", progress,
                         done=len(sent), total=len(execution_ids))  # fmt: skip
    sent |= waiting
    return len(sent)


async def _reset_admission(
    settings: Settings, producer: AIOKafkaProducer, states: list[ExecutionState]
) -> None:
    """The admission queue's state, from the archived states of the executions that went
    through it: who holds a slot, who waits. Sent after their rehydrates, so an Admit it
    sends finds its execution there."""
    now = int(time.time() * 1000)
    live = [s for s in states if not s.finished]
    reset = AdmissionReset(
        received_at=now,
        running=tuple(Occupy(received_at=now, subject=s.execution_id, scopes=scopes_of(s))
                      for s in live if s.status != "queued"),
        queued=tuple(Enqueue(received_at=s.queued_at or now, subject=s.execution_id,
                             subject_tenant=s.tenant, scopes=scopes_of(s), priority=s.priority)
                     for s in live if s.status == "queued"),
    )  # fmt: skip
    await producer.send_and_wait(settings.topic("commands"), reset.model_dump_json().encode(),
                                 key=ADMISSION_KEY.encode())  # fmt: skip


def _children(state: bytes) -> set[str]:
    """The child execution ids an archived state names (none: no parse)."""
    if b'"child":"' not in state:
        return set()
    steps = orjson.loads(state).get("steps") or {}
    return {s["child"] for s in steps.values() if s.get("child")}


async def _append(
    settings: Settings, producer: AIOKafkaProducer, entries: list[dict],
    progress: Progress | None,
) -> None:  # fmt: skip
    # The journal keeps the name the entry was first sent to; it goes to today's topic.
    items = [[(settings.topic(logical_topic(e["topic"])), e["execution_id"],
               e["payload"].encode())] for e in entries]  # fmt: skip
    await _send_in_order(producer, items, "entries", progress)


async def _send_in_order(
    producer: AIOKafkaProducer, items: list[list[tuple[str, str, bytes]]], phase: str,
    progress: Progress | None, *, done: int = 0, total: int | None = None,
) -> None:  # fmt: skip
    """Send each item's records (keyed by execution id), awaiting acks every CHUNK items;
    ``done``/``total`` place these items in a larger whole for the progress report."""
    pending = []
    total = len(items) if total is None else total
    for i, records in enumerate(items, 1):
        for topic, key, value in records:
            pending.append(await producer.send(topic, value, key=key.encode()))
        if i % CHUNK == 0 or i == len(items):
            for fut in pending:
                await fut
            pending.clear()
            _tell(progress, phase, done + i, total)


def _tell(progress: Progress | None, phase: str, done: int, total: int) -> None:
    log.info("restore: %s %d/%d", phase, done, total)
    if progress is not None:
        progress(phase, done, total)
