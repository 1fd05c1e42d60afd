"""Events → ClickHouse rows (pure: no I/O, no clock).

``project`` folds a batch of events onto the executions' prior states with the same
``evolve`` the worker uses, and returns column-oriented rows for ``events``,
``executions`` (each touched execution's state after the batch) and ``step_records``
(every attempt of every step the batch touched). Delivery is at-least-once, so events at
or below an execution's projected seq are dropped; an event that does not continue the
seq would leave a gap, so it and the rest of that execution's batch are kept out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from projections.by_time import (
    BY_STATUS_COLUMNS,
    by_status_key,
    by_status_row,
    by_time_row,
    doc_of,
    duration_of,
    figures,
    placement,
    ran,
)
from projections.by_time import COLUMNS as BY_TIME_COLUMNS
from streams.contracts import Event
from streams.machine import evolve
from streams.state import Attempt, ExecutionState, StepState, attempts_of
from streams.times import ms_of

EVENT_COLUMNS = (
    "tenant", "execution_id", "seq", "event_id", "cause_id", "event_type", "step_id",
    "timestamp", "message", "data", "workflow_id", "system", "module", "labels", "received_at",
)  # fmt: skip
EXECUTION_COLUMNS = (
    "tenant", "execution_id", "workflow_id", "plan_id", "mode", "status", "progress",
    "environment", "labels", "systems", "modules", "failed_steps", "error_type", "started_at",
    "finished_at", "duration_ms", "last_seq", "state", "updated_at",
)  # fmt: skip
STEP_RECORD_COLUMNS = (
    "tenant", "execution_id", "workflow_id", "plan_id", "step_id", "attempt", "system",
    "module", "status", "started_at", "finished_at", "duration_ms", "error", "error_type",
    "retryable", "version", "is_deleted",
)  # fmt: skip


@dataclass
class Rows:
    """Rows for one table, appended as tuples in ``names`` order, read column-oriented."""

    names: tuple[str, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def append(self, values: tuple[Any, ...]) -> None:
        assert len(values) == len(self.names)
        self.rows.append(values)

    @property
    def columns(self) -> list[list[Any]]:
        """``columns[i]`` holds the values of ``names[i]`` (clickhouse-connect's fast path)."""
        if not self.rows:
            return [[] for _ in self.names]
        return [list(column) for column in zip(*self.rows, strict=True)]

    def __len__(self) -> int:
        return len(self.rows)

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.names, row, strict=True)) for row in self.rows]


@dataclass
class Projection:
    events: Rows
    executions: Rows
    step_records: Rows
    by_time: Rows
    by_status: Rows
    states: dict[str, ExecutionState]  # every touched execution, after the batch
    stored: dict[str, str]  # ... and its stored form (what its ``executions`` row holds)
    applied: list[Event]  # the events that made it in, per execution in seq order
    duplicates: int = 0  # events at or below the projected seq (redeliveries)
    # id -> (expected seq, got seq, events kept out)
    gaps: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    @property
    def token(self) -> str:
        return dedup_token(self.applied)

    @property
    def empty(self) -> bool:
        return not self.applied


def dedup_token(events: Iterable[Event]) -> str:
    """A digest of the sorted ``(execution_id, seq)`` list: the same batch, the same token."""
    keys = sorted({(e.execution_id, e.seq) for e in events})
    h = hashlib.blake2b(digest_size=16)
    for execution_id, seq in keys:
        h.update(f"{execution_id}\x1f{seq}\x1e".encode())
    return h.hexdigest()


def project(batch: Sequence[Event], prior: Mapping[str, ExecutionState | None]) -> Projection:
    """Fold ``batch`` onto ``prior`` (missing or None = not projected yet) into rows."""
    out = Projection(
        events=Rows(EVENT_COLUMNS), executions=Rows(EXECUTION_COLUMNS),
        step_records=Rows(STEP_RECORD_COLUMNS), by_time=Rows(BY_TIME_COLUMNS),
        by_status=Rows(BY_STATUS_COLUMNS), states={}, stored={}, applied=[],
    )  # fmt: skip
    by_execution: dict[str, list[Event]] = {}
    for event in batch:
        by_execution.setdefault(event.execution_id, []).append(event)
    for execution_id, events in by_execution.items():
        before = prior.get(execution_id)
        state, kept, touched = _fold(out, before, sorted(events, key=lambda e: e.seq))
        if state is None or not kept:
            continue
        out.states[execution_id] = state
        out.stored[execution_id] = stored = state.stored_json()
        out.applied.extend(kept)
        for event in kept:
            out.events.append(event_row(event))
        figs = figures(state)
        doc = doc_of(state, figs)
        out.executions.append(execution_row(state, figs, stored))
        if before is not None and before.seq and before.started_at != state.started_at:
            out.by_time.append(by_time_row(before, figures(before), deleted=True,
                                           version=state.seq))  # fmt: skip
        out.by_time.append(by_time_row(state, figs, doc=doc))
        if before is not None and before.seq and by_status_key(before) != by_status_key(state):
            out.by_status.append(by_status_row(before, "", deleted=True, version=state.seq))
        out.by_status.append(by_status_row(state, doc))
        for step_id in sorted(touched):
            _add_step_rows(out.step_records, state, before, step_id)
    return out


def _fold(
    out: Projection, before: ExecutionState | None, events: list[Event]
) -> tuple[ExecutionState | None, list[Event], set[str]]:
    state = before
    seq = before.seq if before is not None else 0
    kept: list[Event] = []
    touched: set[str] = set()
    for i, event in enumerate(events):
        if event.seq <= seq:
            out.duplicates += 1
            continue
        if event.seq != seq + 1:
            out.gaps[event.execution_id] = (seq + 1, event.seq, len(events) - i)
            break
        state = evolve(state, event)
        seq = event.seq
        kept.append(event)
        if event.step_id:
            touched.add(event.step_id)
    return state, kept, touched


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _ms(iso: str | None) -> int | None:
    return ms_of(iso) if iso else None


def event_row(e: Event) -> tuple[Any, ...]:
    return (
        e.tenant, e.execution_id, e.seq, e.event_id, e.cause_id, e.event_type, e.step_id,
        ms_of(e.timestamp), e.message, _json(e.data), e.workflow_id, e.system, e.module,
        _json(e.labels), _ms(e.received_at),
    )  # fmt: skip


def execution_row(state: ExecutionState, figs: dict[str, Any], stored: str) -> tuple[Any, ...]:
    """The ``executions`` row of ``state`` (``figs`` = ``by_time.figures(state)``, ``stored``
    = ``state.stored_json()``)."""
    return (
        state.tenant, state.execution_id, state.workflow_id,
        state.plan.id if state.plan else None, state.mode, state.status, figs["progress"],
        state.environment, dict(state.labels), figs["systems"], figs["modules"],
        figs["failed_steps"], state.error_type, state.started_at, state.finished_at,
        duration_of(state), state.seq, stored,
        state.last_activity_at or state.finished_at or state.started_at,
    )  # fmt: skip


def _attempt_row(
    state: ExecutionState, step: StepState, a: Attempt, *, deleted: bool = False
) -> tuple[Any, ...]:
    system, module = placement(state, step.step_id)
    return (
        state.tenant, state.execution_id, state.workflow_id,
        state.plan.id if state.plan else None, step.step_id, a.attempt, system, module,
        a.status, a.started_at, a.finished_at, a.duration_ms, a.error, a.error_type,
        a.retryable, state.seq, int(deleted),
    )  # fmt: skip


def _add_step_rows(
    rows: Rows, state: ExecutionState, before: ExecutionState | None, step_id: str
) -> None:
    step = state.steps.get(step_id)
    if step is None:  # e.g. a log line naming a step that has no report yet
        return
    attempts = ran(attempts_of(step))
    for a in attempts:
        rows.append(_attempt_row(state, step, a))
    # A late report with an earlier timestamp can fold two attempts into one, or move an
    # attempt's start (part of the key): retract the rows under keys that no longer exist.
    old_step = before.steps.get(step_id) if before is not None else None
    if old_step is not None:
        kept = {(a.attempt, a.started_at) for a in attempts}
        for a in ran(attempts_of(old_step)):
            if (a.attempt, a.started_at) not in kept:
                rows.append(_attempt_row(state, old_step, a, deleted=True))
