"""Export benchmark: stream N step records as CSV (and NDJSON) through `export_stream`.

Loads N synthetic rows straight into `step_records` (bulk, column-oriented), then runs the
export the API runs, writing to a file, and reports rows/s and the process's peak RSS
growth over the export (VmHWM reset after the warm-up; chDB's own ~290 MB is the base).

    python benchmarks/export.py [--rows 1000000]
Last line: BENCH {json}.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import orjson
import typer
from rich.progress import Progress

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._harness import machine, reset_peak_rss, rss_mb  # noqa: E402
from projections.clickhouse import ClickHouse  # noqa: E402
from projections.export import export_stream  # noqa: E402
from projections.filters import Filters  # noqa: E402
from projections.rows import STEP_RECORD_COLUMNS  # noqa: E402
from projections.schema import migrate  # noqa: E402
from streams.executors.masking import Masker  # noqa: E402

DB = "bench"
T0 = 1_756_720_000_000
BATCH = 100_000


async def load(ch: ClickHouse, rows: int) -> None:
    with Progress() as bar:
        task = bar.add_task("step_records", total=rows)
        for base in range(0, rows, BATCH):
            n = min(BATCH, rows - base)
            idx = range(base, base + n)
            cols: dict[str, list[object]] = {
                "tenant": ["default"] * n,
                "execution_id": [f"exec_{i // 10:08d}" for i in idx],
                "workflow_id": [f"wf_{(i // 10) % 20:02d}" for i in idx],
                "plan_id": [None] * n,
                "step_id": [f"step{i % 10:02d}" for i in idx],
                "attempt": [1] * n,
                "system": [f"sys{i % 8}" for i in idx],
                "module": [f"mod{i % 40}" for i in idx],
                "status": ["failed" if i % 97 == 0 else "succeeded" for i in idx],
                "started_at": [T0 + i * 10 for i in idx],
                "finished_at": [T0 + i * 10 + 80 for i in idx],
                "duration_ms": [80] * n,
                "error": ["HTTP 500 from ledger" if i % 97 == 0 else None for i in idx],
                "error_type": ["Http500" if i % 97 == 0 else None for i in idx],
                "retryable": [False] * n,
                "version": [10] * n,
                "is_deleted": [0] * n,
            }
            await ch.insert("step_records", [cols[c] for c in STEP_RECORD_COLUMNS],
                            STEP_RECORD_COLUMNS, database=DB)  # fmt: skip
            bar.update(task, advance=n)


async def run_export(ch: ClickHouse, fmt: str, out: Path) -> dict[str, float]:
    reset_peak_rss()
    base = rss_mb("VmRSS")
    started = time.perf_counter()
    size = 0
    chunks = export_stream(ch, DB, kind="records", fmt=fmt, filters=Filters(),  # type: ignore[arg-type]
                           masker=Masker.of(["password"]))  # fmt: skip
    with out.open("wb") as f:
        async for chunk in chunks:
            f.write(chunk)
            size += len(chunk)
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2), "mb": round(size / 1e6, 1),
            "rss_start_mb": round(base), "rss_peak_growth_mb": round(rss_mb("VmHWM") - base, 1)}


async def main_async(rows: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="runledger-export-bench-"))
    ch = ClickHouse(f"chdb://{root / 'ch'}")
    try:
        print(f"machine: {machine()}", flush=True)
        await migrate(ch, DB)
        t = time.perf_counter()
        await load(ch, rows)
        print(f"loaded {rows:,} rows in {time.perf_counter() - t:.1f}s", flush=True)
        await ch.command(f"OPTIMIZE TABLE {DB}.step_records FINAL")
        await run_export(ch, "csv", root / "warmup.csv")  # warm caches and the engine
        result: dict[str, object] = {"bench": "export", "rows": rows, **machine()}
        for fmt in ("csv", "ndjson"):
            figures = await run_export(ch, fmt, root / f"out.{fmt}")
            rate = rows / figures["seconds"]
            print(f"{fmt}: {rows:,} rows in {figures['seconds']}s = {rate:,.0f} rows/s, "
                  f"{figures['mb']} MB, peak RSS growth {figures['rss_peak_growth_mb']} MB "
                  f"(from {figures['rss_start_mb']} MB)", flush=True)  # fmt: skip
            result[fmt] = {**figures, "rows_per_s": round(rate)}
        print("BENCH " + orjson.dumps(result).decode())
    finally:
        ch.close()


def main(rows: int = typer.Option(1_000_000, help="step records to export")) -> None:
    asyncio.run(main_async(rows))


if __name__ == "__main__":
    typer.run(main)
