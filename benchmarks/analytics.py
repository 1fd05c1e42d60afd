"""Analytics benchmark (issue 7): the read side over 1 M executions / ~10 M step records.

Generation (benchmarks/_analytics_data.py): tracked executions as reports, turned into
the events `streams.machine.decide` emits for them and written through the real
batch-writer path, --batch executions per write, in worker processes.

Then each read runs 20 times after a warm-up (p50/p95 in ms, called as the API calls
it; reads over 50 ms or their target are run once more with each SQL statement timed),
and ~1 M records are exported as CSV through `export_stream` (rows/s, peak RSS growth).

    python benchmarks/analytics.py [--executions 1000000] [--days 30] [--batch 10000]
Last line: BENCH {json}.
"""

from __future__ import annotations

import asyncio
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import orjson
import typer
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._analytics_data import (  # noqa: E402
    DB,
    WORKFLOWS,
    Plan,
    check_plan,
    generate,
    settle,
)
from benchmarks._harness import machine, reset_peak_rss, rss_mb  # noqa: E402
from projections.clickhouse import ClickHouse  # noqa: E402
from projections.export import export_stream  # noqa: E402
from projections.export_status import ExportStatus  # noqa: E402
from projections.filters import Filters  # noqa: E402
from projections.realtime import realtime_stats  # noqa: E402
from projections.schema import migrate  # noqa: E402
from projections.search import search_executions  # noqa: E402
from projections.stats import group_stats, workflow_stats  # noqa: E402
from projections.tracking import tracking_records, tracking_summary  # noqa: E402
from runledger.settings import Settings  # noqa: E402
from streams.executors.masking import Masker  # noqa: E402

RUNS = 20
TARGETS = {"summary_one": 10.0, "search_first": 10.0, "search_filtered": 10.0,
           "search_cursor": 10.0, "workflow_stats": 50.0}  # fmt: skip
EXPORT_TARGET_ROWS_S, EXPORT_TARGET_RSS_MB = 1_000_000, 100.0


class Trace:
    """Times each SQL statement a read sends (wraps this handle's ``query``)."""

    def __init__(self, ch: ClickHouse) -> None:
        self.ch, self.log = ch, cast(list[tuple[str, float, int]], [])

    async def _query(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        t = time.perf_counter()
        rows = await ClickHouse.query(self.ch, sql, params)
        self.log.append((" ".join(sql.split()), (time.perf_counter() - t) * 1000, len(rows)))
        return rows

    async def run(self, fn: Callable[[], Awaitable[Any]]) -> list[tuple[str, float, int]]:
        self.log = []
        self.ch.query = self._query  # type: ignore[method-assign]
        try:
            await fn()
        finally:
            del self.ch.query
        return self.log


def _p(xs: list[float], q: float) -> float:
    return round(statistics.quantiles(xs, n=100, method="inclusive")[int(q * 100) - 1], 2)


async def timed(fn: Callable[[int], Awaitable[Any]], runs: int = RUNS) -> dict[str, float]:
    await fn(runs)  # warm-up
    ms = []
    for i in range(runs):
        t = time.perf_counter()
        await fn(i)
        ms.append((time.perf_counter() - t) * 1000)
    return {"p50_ms": _p(ms, 0.5), "p95_ms": _p(ms, 0.95), "max_ms": round(max(ms), 2)}


async def reads(ch: ClickHouse, plan: Plan, console: Console) -> dict[str, dict[str, Any]]:
    now = plan.now
    ids = [r["execution_id"] for r in await ch.query(
        f"SELECT execution_id FROM {DB}.executions ORDER BY cityHash64(execution_id) "
        "LIMIT {n:UInt32}", {"n": RUNS + 1})]  # fmt: skip
    wf_rows = await ch.query(f"SELECT workflow_id AS w, count() AS n FROM {DB}.executions "
                             "GROUP BY w ORDER BY n DESC")  # fmt: skip
    big, mid = wf_rows[0]["w"], wf_rows[len(wf_rows) // 2]["w"]
    month = Filters(since_ms=plan.t0, until_ms=now + 1)
    cursors = [None]
    for _ in range(RUNS + 1):
        cursors.append((await search_executions(ch, Filters(), 50, cursors[-1],
                                                database=DB))["next_cursor"])  # fmt: skip
    hour = Filters(workflow_id=mid, since_ms=now - 3_600_000)
    rec_cursor = (await tracking_records(ch, filters=hour, database=DB))["next_cursor"]
    wf = lambda i: WORKFLOWS[i % len(WORKFLOWS)]  # noqa: E731
    minute = 60_000
    queries: dict[str, tuple[str, Callable[[int], Awaitable[Any]]]] = {
        "summary_one": ("tracking summary, one execution (20 ids)", lambda i: tracking_summary(
            ch, ids[i], now_ms=now, database=DB)),
        "summary_24h": ("tracking summary, last 24 h", lambda i: tracking_summary(
            ch, now_ms=now - i * minute, database=DB)),
        "search_first": ("search, first page", lambda i: search_executions(
            ch, Filters(), 50, database=DB)),
        "search_filtered": ("search, workflow + status=failed", lambda i: search_executions(
            ch, Filters(workflow_id=wf(i), status="failed"), 50, database=DB)),
        "search_error_type": ("search, error_type=Timeout", lambda i: search_executions(
            ch, Filters(error_type="Timeout"), 50, database=DB)),
        "search_cursor": ("search, pages 2..21 (cursor)", lambda i: search_executions(
            ch, Filters(), 50, cursors[i + 1], database=DB)),
        "workflow_stats": (f"workflow stats {big} (largest), default 24 h",
                           lambda i: workflow_stats(ch, big, Filters(), now_ms=now - i * minute,
                                                    database=DB)),
        "workflow_stats_mid": (f"workflow stats {mid} (median), default 24 h",
                               lambda i: workflow_stats(ch, mid, Filters(), now_ms=now - i * minute,
                                                        database=DB)),
        "workflow_stats_all": (f"workflow stats {big}, whole {plan_days(plan)} d",
                               lambda i: workflow_stats(ch, big, month, database=DB)),
        "workflow_stats_hourly": (f"workflow stats {big}, 24 h, interval=hour",
                                  lambda i: workflow_stats(ch, big, Filters(), interval="hour",
                                                           now_ms=now - i * minute, database=DB)),
        "system_stats": ("systems stats, 24 h", lambda i: group_stats(
            ch, "system", Filters(), now_ms=now - i * minute, database=DB)),
        "module_stats": ("modules stats, 24 h", lambda i: group_stats(
            ch, "module", Filters(), now_ms=now - i * minute, database=DB)),
        "realtime": ("realtime", lambda i: realtime_stats(ch, Filters(), now_ms=now - i * 1000,
                                                          database=DB)),
        "records_one": ("tracking records, one execution", lambda i: tracking_records(
            ch, ids[i], database=DB)),
        "records_wf_hour": ("tracking records, workflow, last hour", lambda i: tracking_records(
            ch, filters=Filters(workflow_id=wf(i), since_ms=now - 3_600_000), database=DB)),
        "records_cursor": ("tracking records, page 2 (cursor)", lambda i: tracking_records(
            ch, filters=hour, cursor=rec_cursor, database=DB)),
        "records_all": ("tracking records, no filter (API default)", lambda i: tracking_records(
            ch, database=DB)),
    }  # fmt: skip
    out: dict[str, dict[str, Any]] = {}
    trace = Trace(ch)
    for key, (label, fn) in queries.items():
        figures = await timed(fn)
        target = TARGETS.get(key)
        verdict = "" if target is None else ("ok" if figures["p95_ms"] <= target else "MISSED")
        aim = f"target p95 ≤ {target:g} ms " if target else ""
        console.print(f"{label:<48} p50 {figures['p50_ms']:>8.1f} ms  "
                      f"p95 {figures['p95_ms']:>8.1f} ms  {aim}{verdict}")
        out[key] = {"label": label, **figures, "target_p95_ms": target}
        if target is not None and figures["p95_ms"] > target or figures["p95_ms"] > 50:
            stmts = await trace.run(lambda fn=fn: fn(0))  # type: ignore[misc]
            out[key]["statements"] = [{"sql": s[:160], "ms": round(ms, 1), "rows": n}
                                      for s, ms, n in stmts]  # fmt: skip
            for s, ms, n in stmts:
                console.print(f"    {ms:8.1f} ms {n:>6} rows  {s[:110]}")
    return out


def plan_days(plan: Plan) -> int:
    return round((plan.now - plan.t0) / 86_400_000)


async def export(ch: ClickHouse, f: Filters, out: Path) -> dict[str, Any]:
    """One CSV export to a file; peak RSS from VmHWM, reset before the export."""
    reset_peak_rss()
    base = rss_mb("VmRSS")
    status = ExportStatus("bench", "records", "csv")
    size = 0
    started = time.perf_counter()
    with out.open("wb") as fh:
        async for chunk in export_stream(ch, DB, kind="records", fmt="csv", filters=f,
                                         masker=Masker.of(Settings().mask_patterns),
                                         status=status):  # fmt: skip
            fh.write(chunk)
            size += len(chunk)
    seconds = time.perf_counter() - started
    return {"rows": status.rows, "seconds": round(seconds, 2), "mb": round(size / 1e6, 1),
            "rows_per_s": round(status.rows / seconds), "rss_start_mb": round(base),
            "rss_peak_growth_mb": round(rss_mb("VmHWM") - base, 1)}  # fmt: skip


async def main_async(executions: int, days: float, batch: int, workers: int, keep: bool
                     ) -> None:  # fmt: skip
    console = Console(width=150)
    began = time.perf_counter()
    now = (int(time.time() * 1000) // 1000) * 1000
    plan = Plan(executions, now - int(days * 86_400_000), now)
    check_plan(plan)
    root = Path(tempfile.mkdtemp(prefix="runledger-analytics-bench-"))
    ch = ClickHouse(f"chdb://{root / 'ch'}")
    try:
        console.print(f"machine: {machine()}; data dir {root}")
        await migrate(ch, DB)
        gen = await generate(ch, plan, batch, workers)
        console.print(f"generated {gen['executions']:,} executions, {gen['step_records']:,} step "
                      f"records, {gen['events']:,} events in {gen['seconds']} s "
                      f"({gen['step_records_per_s']:,} step records/s, {gen['events_per_s']:,} "
                      f"events/s; {gen['insert_seconds']} s inside inserts)")  # fmt: skip
        t = time.perf_counter()
        gen["parts"] = await settle(ch)
        console.print(f"merges settled in {time.perf_counter() - t:.0f} s; parts {gen['parts']}")
        queries = await reads(ch, plan, console)
        # ~1 M records: the most recent slice of the window holding that many.
        share = min(1.0, 1_000_000 / max(gen["step_records"], 1))
        f = Filters(since_ms=now - int((now - plan.t0) * share), until_ms=now + 1)
        # The process's first export pays once for the reader threads' engine state (two
        # slices run at once): warm up with ~250k records, printed apart from the runs.
        warm_share = min(1.0, 250_000 / max(gen["step_records"], 1))
        first = await export(ch, Filters(since_ms=now - int((now - plan.t0) * warm_share)),
                             root / "warmup.csv")  # fmt: skip
        console.print(f"warm-up export: {first['rows']:,} rows, {first['rows_per_s']:,} rows/s, "
                      f"peak RSS growth {first['rss_peak_growth_mb']} MB "
                      f"(from {first['rss_start_mb']} MB)")  # fmt: skip
        runs = [await export(ch, f, root / "out.csv") for _ in range(2)]
        for r in runs:
            console.print(f"export CSV: {r['rows']:,} rows in {r['seconds']} s = "
                          f"{r['rows_per_s']:,} rows/s (target ≥ {EXPORT_TARGET_ROWS_S:,}), "
                          f"{r['mb']} MB, peak RSS growth {r['rss_peak_growth_mb']} MB "
                          f"(target < {EXPORT_TARGET_RSS_MB:g}; from {r['rss_start_mb']} MB)")
        worst = {"rows_per_s": min(r["rows_per_s"] for r in runs),
                 "rss_peak_growth_mb": max(r["rss_peak_growth_mb"] for r in runs)}
    finally:
        ch.close()
        if keep:
            console.print(f"kept the data dir: chdb://{root / 'ch'} (database {DB})")
        else:
            shutil.rmtree(root, ignore_errors=True)
    search = max(queries[k]["p95_ms"] for k in ("search_first", "search_filtered", "search_cursor"))
    result = {"bench": "analytics", "machine": machine(),
              "lookup_p95_ms": queries["summary_one"]["p95_ms"], "search_p95_ms": search,
              "stats_p95_ms": queries["workflow_stats"]["p95_ms"],
              "export_rows_per_s": worst["rows_per_s"],
              "export_rss_growth_mb": worst["rss_peak_growth_mb"],
              "process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                           / 1024),
              "total_seconds": round(time.perf_counter() - began),
              "generation": {**gen, "days": days, "batch": batch, "workers": workers},
              "queries": queries, "export": runs, "export_warmup": first,
              "targets": {"lookup_p95_ms": 10, "search_p95_ms": 10, "stats_p95_ms": 50,
                          "export_rows_per_s": EXPORT_TARGET_ROWS_S,
                          "export_rss_growth_mb": EXPORT_TARGET_RSS_MB}}  # fmt: skip
    table = Table("figure", "value", "target", "met")
    for key, op in (("lookup_p95_ms", "≤"), ("search_p95_ms", "≤"), ("stats_p95_ms", "≤"),
                    ("export_rows_per_s", "≥"), ("export_rss_growth_mb", "<")):
        value, target = result[key], result["targets"][key]  # type: ignore[index]
        met = value <= target if op == "≤" else value >= target if op == "≥" else value < target
        table.add_row(key, f"{value:,}", f"{op} {target:,}", "yes" if met else "NO")
    console.print(table)
    print("BENCH " + orjson.dumps(result).decode(), flush=True)


def main(
    executions: int = typer.Option(1_000_000, help="executions (10 steps each)"),
    days: float = typer.Option(30, help="start times spread over this many days up to now"),
    batch: int = typer.Option(10_000, help="executions per write_projection"),
    workers: int = typer.Option(2, help="processes running project()"),
    keep: bool = typer.Option(False, help="keep the chDB data dir (to explore it afterwards)"),
) -> None:
    asyncio.run(main_async(executions, days, batch, workers, keep))


if __name__ == "__main__":
    typer.run(main)
