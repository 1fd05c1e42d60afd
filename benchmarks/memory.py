"""Memory soak: is every process's memory flat under a steady load that runs for long?

Starts the product as `make run` does and offers tracked executions at a steady --rate
(10 step events each, then execution_completed; batches of --batch) for --minutes.
Every --every seconds it prints the RSS of each product process. A finished execution
leaves the worker's table --finished-ttl seconds after its last event (the product's
default is 900 s; a shorter one lets the soak reach the steady state sooner), and the
embedded broker moves to a new topic generation past --generation-records records.
With --unended no execution gets its end, as from a reporter that never sends one: each
leaves the worker's table --idle-ttl seconds after its last event (default 300 s).

A process is flat when the mean RSS of the last third of the samples is within 10 %
(and 20 MB) of the middle third's: by then every bounded cache has had the time to fill.
The RSS line of each process is printed too, so a slow leak shows as a slope.

    python benchmarks/memory.py [--rate 2000] [--minutes 10] [--every 20]
                                [--finished-ttl 60] [--generation-records 100000]
                                [--unended] [--idle-ttl 60]
Last line: BENCH {json}.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

import httpx
import orjson
import typer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._harness import (  # noqa: E402
    Snapshot,
    machine,
    role_of,
    rss_snapshot,
    running_product,
)
from benchmarks._ingest_probes import (  # noqa: E402
    JSON,
    _events_for,
    finished_reports,
    new_ids,
)

Series = dict[str, list[float]]  # role → RSS MB per sample


async def offer(base_url: str, rate: float, seconds: float, batch: int,
                counts: dict[str, int], ended: bool = True) -> None:  # fmt: skip
    """POST executions at ``rate`` events/s, completed unless not ``ended``, 4 requests in
    flight at most."""
    reports = finished_reports if ended else _events_for
    per_exec = len(reports("x"))
    per_batch = max(batch // per_exec, 1)
    interval = per_batch * per_exec / rate
    slots = asyncio.Semaphore(4)
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:

        async def send() -> None:
            body = orjson.dumps({"events": [e for eid in new_ids(per_batch, "mem")
                                            for e in reports(eid)]})  # fmt: skip
            try:
                r = await client.post("/api/v1/events", content=body, headers=JSON)
                counts["accepted" if r.status_code == 202 else "refused"] += per_batch
            except httpx.HTTPError:
                counts["refused"] += per_batch
            finally:
                slots.release()

        tasks = []
        t0 = time.perf_counter()
        k = 0
        while time.perf_counter() - t0 < seconds:
            await asyncio.sleep(max(t0 + k * interval - time.perf_counter(), 0))
            await slots.acquire()
            tasks.append(asyncio.create_task(send()))
            k += 1
        await asyncio.gather(*tasks)


def roles(snap: Snapshot) -> dict[str, float]:
    """RSS by role (the last word of a process's name; "worker 2" for a second one), so a
    process the product starts again, as it does its workers at a generation switch,
    continues its role's line."""
    out: dict[str, float] = {}
    for _pid, (name, mb) in sorted(snap.items()):
        if mb is None:
            continue
        role = role_of(name)
        k = 1
        while (key := role if k == 1 else f"{role} {k}") in out:
            k += 1
        out[key] = mb
    return out


async def keeping_up(client: httpx.AsyncClient) -> str:
    """The topic generation, and how many records the projector is behind (a product that
    falls behind holds more in memory, whatever its bounds)."""
    try:
        data = (await client.get("/api/v1/stats/realtime")).json()["data"]
        return (f"generation {data['generation']['number']}, projector behind "
                f"{data['projector_lag']['total']:,} records")
    except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
        return f"(realtime stats: {exc!r})"


async def sample(base_url: str, every: float, seconds: float, series: Series,
                 counts: dict[str, int]) -> None:  # fmt: skip
    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        while (elapsed := time.perf_counter() - t0) < seconds + every / 2:
            by_role = roles(rss_snapshot())
            for role, mb in by_role.items():
                series.setdefault(role, []).append(round(mb, 1))
            cells = "  ".join(f"{role} {mb:,.0f}" for role, mb in by_role.items())
            print(f"  {elapsed:5.0f}s  executions accepted {counts['accepted']:>8,}  "
                  f"RSS MB: {cells}; {await keeping_up(client)}", flush=True)
            await asyncio.sleep(every)


def flatness(series: Series) -> dict[str, dict[str, float | bool]]:
    out: dict[str, dict[str, float | bool]] = {}
    for key, mb in series.items():
        third = max(len(mb) // 3, 1)
        middle, last = statistics.mean(mb[third:2 * third] or mb), statistics.mean(mb[-third:])
        out[key] = {"start": mb[0], "middle_third": round(middle, 1),
                    "last_third": round(last, 1), "peak": max(mb),
                    "flat": last <= middle * 1.10 + 20}  # fmt: skip
    return out


async def soak(base_url: str, rate: float, seconds: float, every: float, batch: int,
               ended: bool) -> tuple[Series, dict[str, int]]:  # fmt: skip
    series: Series = {}
    counts = {"accepted": 0, "refused": 0}
    await asyncio.gather(offer(base_url, rate, seconds, batch, counts, ended),
                         sample(base_url, every, seconds, series, counts))
    return series, counts


def main(rate: float = 2_000.0, minutes: float = 10.0, every: float = 20.0,
         batch: int = 1_000, finished_ttl: float = 60.0,
         generation_records: int = 100_000, unended: bool = False,
         idle_ttl: float = 300.0) -> None:  # fmt: skip
    env = {"RUNLEDGER_FINISHED_TTL": str(finished_ttl), "RUNLEDGER_IDLE_TTL": str(idle_ttl),
           "RUNLEDGER_GENERATION_MAX_RECORDS": str(generation_records)}
    kind = "executions that never get an end" if unended else "completed executions"
    with running_product(12, **env) as (_settings, base_url):
        print(f"machine: {machine()}", flush=True)
        print(f"offering {rate:,.0f} events/s of {kind} for {minutes:g} min; finished TTL "
              f"{finished_ttl:g}s, idle TTL {idle_ttl:g}s, a generation per "
              f"{generation_records:,} records", flush=True)
        series, counts = asyncio.run(soak(base_url, rate, minutes * 60, every, batch,
                                          not unended))  # fmt: skip
        generation = httpx.get(f"{base_url}/api/v1/stats/realtime", timeout=30
                               ).json()["data"]["generation"]["number"]  # fmt: skip
    verdict = flatness(series)
    print("RSS (MB): start, mean of the middle third, mean of the last third, peak:")
    for key, v in verdict.items():
        print(f"  {key:<12} {v['start']:>7,.0f} {v['middle_third']:>7,.0f} "
              f"{v['last_third']:>7,.0f} {v['peak']:>7,.0f}  "
              f"{'flat' if v['flat'] else 'GROWING'}", flush=True)
    result = {"bench": "memory", "machine": machine(), "rate_events_per_s": rate,
              "minutes": minutes, "finished_ttl_s": finished_ttl, "idle_ttl_s": idle_ttl,
              "unended": unended,
              "generation_max_records": generation_records, "generation_at_end": generation,
              "executions_accepted": counts["accepted"],
              "executions_refused": counts["refused"], "rss": verdict, "series_mb": series,
              "flat": all(v["flat"] for v in verdict.values())}  # fmt: skip
    print("BENCH " + orjson.dumps(result).decode())


if __name__ == "__main__":
    typer.run(main)
