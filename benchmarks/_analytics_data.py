"""The analytics benchmark's dataset: tracked executions generated as reports, turned
into the events `streams.machine.decide` emits for them (checked against it first), and
written through the real batch-writer path (`project` then `write_projection`).

Data: 20 workflows (zipf-like popularity), 10 steps each, 8 systems, 40 modules, one
tenant, log-normal step durations, starts spread over the window up to "now"; 87% of
executions succeed first time, 8% retry one step (retryable error) and succeed, 5% fail
(6 error types; retryable ones after 3 attempts). Executions not done by "now" stay
running.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import math
import multiprocessing
import random
import sys
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from projections.clickhouse import ClickHouse  # noqa: E402
from projections.rows import Projection, Rows, project  # noqa: E402
from projections.writer import write_projection  # noqa: E402
from streams.contracts import Event, Report, ReportBatch, event_id_for  # noqa: E402
from streams.machine import MachineConfig, decide  # noqa: E402
from streams.times import iso_ms  # noqa: E402

DB = "bench"
STEPS = 10
SEED = 42
WORKFLOWS = [f"wf_{k:02d}" for k in range(20)]
SYSTEMS = [f"sys_{k}" for k in range(8)]
MODULES = [f"mod_{k:02d}" for k in range(40)]
WF_CUM = list(itertools.accumulate(1 / (k + 1) ** 0.8 for k in range(20)))
# (type, weight, retryable, message)
ERRORS = [("Timeout", 35, True, "timed out after 30000 ms waiting for {s}"),
          ("HttpError", 25, True, "HTTP 503 from {s}: service unavailable"),
          ("ConnectionError", 12, True, "connection reset by {s}"),
          ("ValidationError", 15, False, "{m} rejected the payload: 'amount' must be positive"),
          ("PermissionDenied", 8, False, "{m} denied the token: missing scope 'write'"),
          ("NotFound", 5, False, "{m}: customer record not found")]  # fmt: skip
ERR_CUM = list(itertools.accumulate(e[1] for e in ERRORS))
RETRYABLE = [e for e in ERRORS if e[2]]


def _layout() -> list[list[tuple[str, str, float]]]:
    """Per (workflow, step): system, module, median duration (ms); fixed by the seed."""
    rng = random.Random(7)
    pool = MODULES * (len(WORKFLOWS) * STEPS // len(MODULES))
    rng.shuffle(pool)
    out = [[(SYSTEMS[int(pool[w * STEPS + s][4:]) % len(SYSTEMS)], pool[w * STEPS + s],
             math.exp(rng.uniform(math.log(5), math.log(2000)))) for s in range(STEPS)]
           for w in range(len(WORKFLOWS))]  # fmt: skip
    return out


LAYOUT = _layout()


@dataclass(frozen=True)
class Plan:
    executions: int
    t0: int  # epoch ms of the first start
    now: int  # the data ends here: later reports have not arrived yet

    @property
    def spacing(self) -> float:
        return (self.now - self.t0) / self.executions


# A report: (event_type, report_id, ts, received_at, step_id, data, message, system, module)
Rep = tuple[str, str, int, int, str | None, dict[str, Any], str, str | None, str | None]


def _reports(i: int, plan: Plan) -> tuple[str, str, list[Rep]]:
    rng = random.Random(SEED * 1_000_003 + i)
    eid = "exec_" + hashlib.blake2b(f"bench:{i}".encode(), digest_size=12).hexdigest()
    w = rng.choices(range(len(WORKFLOWS)), cum_weights=WF_CUM)[0]
    t = plan.t0 + int((i + rng.random()) * plan.spacing)
    roll, k = rng.random(), rng.randrange(STEPS)
    fail = roll < 0.05
    err = (rng.choices(ERRORS, cum_weights=ERR_CUM)[0] if fail
           else rng.choice(RETRYABLE) if roll < 0.13 else None)  # fmt: skip
    reps: list[Rep] = []
    n = 0

    def rep(kind: str, ts: int, step: str | None, data: dict[str, Any], message: str = "",
            system: str | None = None, module: str | None = None) -> None:  # fmt: skip
        nonlocal n
        n += 1
        reps.append((kind, f"{eid}-r{n}", ts, ts + rng.randint(5, 200), step, data, message,
                     system, module))  # fmt: skip

    for s in range(STEPS if not fail else k + 1):
        system, module, median = LAYOUT[w][s]
        tries = 1 if err is None or s != k else (3 if fail and err[2] else 1 if fail else 2)
        for a in range(1, tries + 1):
            d = max(1, int(rng.lognormvariate(math.log(median), 0.8)))
            if w % 3 == 0:  # these reporters send starts; others only outcomes + duration
                rep("step_started", t, f"step{s:02d}", {}, system=system, module=module)
            t += d
            if err is not None and s == k and (fail or a < tries):
                msg = err[3].format(s=system, m=module)
                rep("step_failed", t, f"step{s:02d}", {"duration_ms": d, "error": msg,
                    "error_type": err[0], "retryable": err[2] and a < tries}, msg,
                    system=system, module=module)  # fmt: skip
                t += 1000 * a  # back-off before the retry
            else:
                rep("step_succeeded", t, f"step{s:02d}", {"duration_ms": d}, system=system,
                    module=module)  # fmt: skip
        t += rng.randint(1, 30)
    if fail:
        assert err is not None
        rep("execution_completed", t, None, {"status": "failed", "error_type": err[0]},
            err[3].format(s=LAYOUT[w][k][0], m=LAYOUT[w][k][1]))  # fmt: skip
    else:
        rep("execution_completed", t, None, {"status": "succeeded"})
    return eid, WORKFLOWS[w], list(itertools.takewhile(lambda r: r[3] <= plan.now, reps))


def _events(eid: str, wf: str, reps: list[Rep]) -> list[Event]:
    """The events `decide` emits for these reports, one ReportBatch each (see check_plan)."""
    out: list[Event] = []
    first_system, first_module = reps[0][7], reps[0][8]

    def emit(kind: str, cause: str, ts: int, recv: int, step: str | None, message: str,
             data: dict[str, Any], system: str | None, module: str | None) -> None:  # fmt: skip
        seq = len(out) + 1
        out.append(Event(
            event_id=event_id_for(eid, seq), cause_id=cause, execution_id=eid, seq=seq,
            event_type=cast(Any, kind), step_id=step, timestamp=iso_ms(ts), message=message,
            data=data, workflow_id=wf, system=system or first_system,
            module=module or first_module, received_at=iso_ms(recv)))  # fmt: skip

    for kind, rid, ts, recv, step, data, message, system, module in reps:
        if not out:
            emit("execution_started", rid, ts, recv, None, "execution started",
                 {"mode": "tracked", "labels": {}, "workflow_id": wf, "system": system,
                  "module": module, "report_id": rid}, system, module)  # fmt: skip
        if kind == "execution_completed":
            emit(kind, rid, ts, recv, None, message, {**data, "report_id": rid}, None, None)
        else:
            emit(kind, rid, ts, recv, step, message, {**data, "report_id": rid}, system, module)
    return out


def check_plan(plan: Plan) -> None:
    """The events built here are exactly those `decide` emits for the same reports."""
    kinds: set[str] = set()
    for i in range(400):
        eid, wf, reps = _reports(i, plan)
        state, expected = None, cast(list[Event], [])
        for kind, rid, ts, recv, step, data, message, system, module in reps:
            report = Report(report_id=rid, event_type=kind, step_id=step, timestamp=ts,  # type: ignore[arg-type]
                            message=message, data=data, workflow_id=wf, system=system,
                            module=module)  # fmt: skip
            d = decide(state, ReportBatch(execution_id=eid, received_at=recv, reports=(report,)),
                       MachineConfig())  # fmt: skip
            state, expected = d.state, [*expected, *d.events]
        got = _events(eid, wf, reps)
        assert [e.model_dump() for e in got] == [e.model_dump() for e in expected], eid
        kinds.add(state.status if state else "none")
    assert {"succeeded", "failed"} <= kinds, kinds


def build_batch(
    first: int, count: int, plan: Plan
) -> tuple[Rows, Rows, Rows, Rows, Rows, list[Any]]:
    """In a worker process: the batch's events projected into rows (the writer's input)."""
    events: list[Event] = []
    for i in range(first, first + count):
        events += _events(*_reports(i, plan))
    proj = project(events, {})
    return proj.events, proj.step_records, proj.executions, proj.by_time, proj.by_status, [
        (e.execution_id, e.seq) for e in proj.applied]  # fmt: skip


@dataclass(frozen=True)
class _Applied:  # what Projection.token reads of an applied event
    execution_id: str
    seq: int


async def generate(ch: ClickHouse, plan: Plan, batch: int, workers: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    counts = {"events": 0, "step_records": 0, "executions": 0}
    insert_s = 0.0
    started = time.perf_counter()
    firsts = iter(range(0, plan.executions, batch))
    cols = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    with (ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool,
          Progress(*cols) as bar):  # fmt: skip
        task = bar.add_task("executions", total=plan.executions, rate="")
        pending: deque[asyncio.Future[tuple[Rows, Rows, Rows, Rows, Rows, list[Any]]]] = deque()

        def submit() -> None:
            first = next(firsts, None)
            if first is not None:
                n = min(batch, plan.executions - first)
                pending.append(loop.run_in_executor(pool, build_batch, first, n, plan))

        for _ in range(workers + 1):
            submit()
        while pending:
            ev, sr, ex, bt, bs, keys = await pending.popleft()
            submit()
            proj = Projection(
                events=ev, executions=ex, step_records=sr, by_time=bt, by_status=bs, states={},
                applied=cast(list[Event], [_Applied(*k) for k in keys]))  # fmt: skip
            t = time.perf_counter()
            await write_projection(ch, proj, database=DB)
            insert_s += time.perf_counter() - t
            counts["events"] += len(ev)
            counts["step_records"] += len(sr)
            counts["executions"] += len(ex)
            elapsed = time.perf_counter() - started
            bar.update(task, advance=len(ex),
                       rate=f"{counts['step_records'] / elapsed:,.0f} step records/s")
    seconds = time.perf_counter() - started
    return {**counts, "seconds": round(seconds, 1), "insert_seconds": round(insert_s, 1),
            "step_records_per_s": round(counts["step_records"] / seconds),
            "events_per_s": round(counts["events"] / seconds),
            "executions_per_s": round(counts["executions"] / seconds)}  # fmt: skip


async def settle(ch: ClickHouse, limit_s: float = 300, calm_s: float = 30) -> dict[str, int]:
    """Wait (up to ``limit_s``) for background merges to finish: no merge running and the
    active parts unchanged for ``calm_s`` (merges are picked every few seconds, so an
    empty system.merges right after the load is not the end of them); parts per table."""
    deadline = time.monotonic() + limit_s
    last: dict[str, int] = {}
    calm_since = time.monotonic()
    while time.monotonic() < deadline:
        rows = await ch.query("SELECT count() AS n FROM system.merges WHERE database = {d:String}",
                              {"d": DB})  # fmt: skip
        parts = await _parts(ch)
        if int(rows[0]["n"]) or parts != last:
            last, calm_since = parts, time.monotonic()
        elif time.monotonic() - calm_since >= calm_s:
            break
        await asyncio.sleep(2)
    return await _parts(ch)


async def _parts(ch: ClickHouse) -> dict[str, int]:
    rows = await ch.query("SELECT table, count() AS n FROM system.parts WHERE database = "
                          "{d:String} AND active GROUP BY table", {"d": DB})  # fmt: skip
    return {r["table"]: int(r["n"]) for r in rows}
