"""Orchestrated benchmark: 10-step plans run by Runledger's own step executors.

Plan (`--plan composite`): start → fetch (api_call GET to a local stub) → check (condition)
→ fan (parallel of the api_calls a, b, c) → merge (transform) → notify (api_call POST) →
end. `--plan flat`: the same 10 steps, `fan` a transform that a, b, c depend on.

(1) raw broker baseline on the product's broker; (2) saturation: starts at `--rate` for
`--seconds`, waited for; executions/s and steps/s = finished executions (succeeded steps)
/ (first start → last finish, execution timestamps); (3) half that steps/s: step-to-step
overhead from a sample's events = a step's start (`step_started`; an inline step's
`step_succeeded`) − the latest `step_succeeded` of its dependencies (a branch: − its
parallel's start). Inline steps are decided in the message that finished their dependency
and carry its time (0 by construction), so the headline is the hops to executor-run steps
(executor finished → worker decided → task → executor started), split at the task
message's broker timestamp; `first_step` is start accepted → `fetch` started.

    python benchmarks/orchestrated.py [--seconds 20] [--rate 400] [--plan composite|flat]
Last line: BENCH {json}.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
import typer
from aiokafka import TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._harness import (  # noqa: E402
    cpu_now,
    cpu_per_unit,
    machine,
    product_processes,
    running_product,
)
from benchmarks._stub import start_stub  # noqa: E402
from benchmarks.ingest import raw_baseline  # noqa: E402
from runledger.kafka import make_consumer  # noqa: E402
from runledger.settings import Settings  # noqa: E402

STEPS = 10
GOAL_STEPS_PER_S, GOAL_OVERHEAD_P99_MS = 3_000, 25
STALL_S = 60  # stop waiting when no execution finished for that long
TERMINAL = {"succeeded", "failed", "stopped"}
KINDS = ("executor", "to_task", "task_to_start", "inline", "first")
def make_plan(kind: str, stub: str) -> dict[str, Any]:
    def call(sid: str, deps: list[str], method: str = "GET", body: Any = None) -> dict:
        return {"id": sid, "type": "api_call", "system": "STUB", "module": sid, "dependsOn": deps,
                "config": {"method": method, "url": f"{stub}/{sid}", "timeout": 10, "body": body}}

    steps = [{"id": "start", "type": "start"}, call("fetch", ["start"]),
             {"id": "check", "type": "condition", "dependsOn": ["fetch"],
              "config": {"expression": "steps.fetch.output.data.ok == true",
                         "true_path": ["fan"], "false_path": []}}]  # fmt: skip
    if kind == "composite":
        steps += [{"id": "fan", "type": "parallel", "dependsOn": ["check"],
                   "config": {"branches": ["a", "b", "c"], "max_concurrent": 3,
                              "wait_for_all": True}}, *(call(b, []) for b in "abc")]
    else:
        steps += [{"id": "fan", "type": "transform", "dependsOn": ["check"],
                   "config": {"mapping": {"go": "{{ steps.fetch.output.data.ok }}"}}},
                  *(call(b, ["fan"]) for b in "abc")]  # fmt: skip
    steps += [{"id": "merge", "type": "transform",
               "dependsOn": ["fan"] if kind == "composite" else ["a", "b", "c"],
               "config": {"mapping": {"n": "{{ steps.fetch.output.data.count }}"}}},
              call("notify", ["merge"], "POST", {"n": "{{ steps.merge.output.n }}"}),
              {"id": "end", "type": "end", "dependsOn": ["notify"]}]  # fmt: skip
    assert len(steps) == STEPS
    return {"id": f"bench_{kind}", "name": f"orchestrated bench ({kind})", "steps": steps}


def ms(iso: str | None) -> int | None:
    return int(datetime.fromisoformat(iso).timestamp() * 1000) if iso else None


def pct(values: list[float], q: float) -> float | None:
    s = sorted(values)
    return float(s[min(len(s) - 1, int(len(s) * q))]) if s else None


async def start_at_rate(session: aiohttp.ClientSession, base: str, plan: dict, wf: str,
                        rate: float, seconds: float) -> tuple[list[str], Counter[str], float]:
    """POST /executions at a fixed rate (open loop: a slow answer does not slow the rate)."""
    ids: list[str] = []
    errors: Counter[str] = Counter()
    sem = asyncio.Semaphore(256)
    total = max(int(rate * seconds), 1)

    async def one(i: int) -> None:
        eid = f"{wf}_{i}"
        body = {"mode": "orchestrated", "execution_id": eid, "plan": plan, "workflow_id": wf}
        async with sem:
            try:
                async with session.post(f"{base}/api/v1/executions", data=orjson.dumps(body),
                                        headers={"content-type": "application/json"}) as r:
                    if r.status == 202:
                        ids.append(eid)
                        return
                    if not errors[str(r.status)]:
                        print(f"  start answered {r.status}: {(await r.text())[:600]}")
                    errors[str(r.status)] += 1
            except (TimeoutError, aiohttp.ClientError) as exc:
                errors[type(exc).__name__] += 1

    t0 = last = time.perf_counter()
    tasks = []
    for i in range(total):
        if (delay := t0 + i / rate - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
        if time.perf_counter() - last > 5:
            last = time.perf_counter()
            print(f"  {last - t0:5.1f}s: {i} starts due, {len(ids)} accepted", flush=True)
    await asyncio.gather(*tasks)
    took = time.perf_counter() - t0
    print(f"  {len(ids)}/{total} starts accepted in {took:.1f}s ({len(ids) / took:,.1f}/s)"
          + (f", errors {dict(errors)}" if errors else ""), flush=True)
    return ids, errors, took


async def wait_finished(session: aiohttp.ClientSession, base: str, wf: str, n: int,
                        max_wait: float) -> None:
    """Until the workflow's statistics count n finished runs (or max_wait, or a stall)."""
    t0 = last = moved = time.perf_counter()
    runs = seen = -1
    while time.perf_counter() - t0 < max_wait and runs < n:
        async with session.get(f"{base}/api/v1/stats/workflows/{wf}") as r:
            runs = int(((await r.json()).get("data") or {}).get("runs") or 0)
        if runs != seen:
            seen, moved = runs, time.perf_counter()
        elif time.perf_counter() - moved > STALL_S:
            print(f"  no execution finished for {STALL_S}s: giving up", flush=True)
            break
        if runs < n:
            if time.perf_counter() - last > 5:
                last = time.perf_counter()
                print(f"  waiting: {runs}/{n} finished after {last - t0:.0f}s", flush=True)
            await asyncio.sleep(1)
    print(f"  {runs}/{n} finished ({time.perf_counter() - t0:.1f}s of waiting)", flush=True)


async def executions_of(session: aiohttp.ClientSession, base: str, wf: str) -> list[dict]:
    rows: list[dict] = []
    cursor = None
    while True:
        params = {"workflow_id": wf, "limit": "1000", **({"cursor": cursor} if cursor else {})}
        async with session.get(f"{base}/api/v1/executions", params=params) as r:
            data = (await r.json())["data"]
        rows += data["items"]
        if not (cursor := data.get("next_cursor")):
            return rows


def throughput(rows: list[dict], accepted: int) -> dict[str, Any]:
    done = [r for r in rows if r["status"] in TERMINAL and r.get("finished_at")]
    out: dict[str, Any] = {"accepted": accepted, "finished": len(done),
                           "unfinished": accepted - len(done),
                           "statuses": dict(Counter(r["status"] for r in rows))}  # fmt: skip
    if not done:
        return {**out, "executions_per_s": 0.0, "steps_per_s": 0.0}
    first = min(ms(r["started_at"]) or 0 for r in rows)
    span_s = max(max(ms(r["finished_at"]) or 0 for r in done) - first, 1) / 1000
    steps = sum(int(r["step_counts"]["succeeded"]) for r in done)
    return {**out, "span_s": round(span_s, 2), "steps_succeeded": steps,
            "executions_per_s": round(len(done) / span_s, 1),
            "steps_per_s": round(steps / span_s, 1)}  # fmt: skip


def overheads(plan: dict, events: list[dict], tasks: dict[str, int]) -> dict[str, list[float]]:
    """Per step: start − ready (see the module's doc); ``tasks``: step id → broker ms."""
    deps = {s["id"]: list(s.get("dependsOn") or []) for s in plan["steps"]}
    parent = {b: s["id"] for s in plan["steps"] if s["type"] == "parallel"
              for b in s["config"]["branches"]}  # fmt: skip
    started: dict[str, int] = {}
    done: dict[str, int] = {}
    dispatched: set[str] = set()
    for e in events:
        sid, kind, ts = e.get("step_id"), e["event_type"], ms(e["timestamp"])
        if sid is None or ts is None:
            continue
        if kind == "step_scheduled":
            dispatched.add(sid)
        elif kind == "step_started":
            started.setdefault(sid, ts)
        elif kind == "step_succeeded":
            done[sid] = ts
            started.setdefault(sid, ts)
    out: dict[str, list[float]] = {k: [] for k in KINDS}
    for sid, t in started.items():
        if sid in parent and parent[sid] in started:
            ready = started[parent[sid]]
        elif deps.get(sid) and all(d in done for d in deps[sid]):
            ready = max(done[d] for d in deps[sid])
        else:
            continue
        kind = "inline" if sid not in dispatched else "first" if deps[sid] == ["start"] \
            else "executor"  # fmt: skip
        out[kind].append(t - ready)
        if kind == "executor" and sid in tasks:
            out["to_task"].append(tasks[sid] - ready)
            out["task_to_start"].append(t - tasks[sid])
    return out


async def task_times(settings: Settings, wanted: set[str]) -> dict[str, dict[str, int]]:
    """execution id → step id → broker timestamp of its first task message."""
    topic = settings.topic("tasks")
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    out: dict[str, dict[str, int]] = {}
    try:
        parts = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning()
        ends = await consumer.end_offsets(parts)
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                for r in records:
                    if r.key and r.value and r.key.decode() in wanted:
                        t = orjson.loads(r.value)
                        if t.get("attempt") == 1:
                            out.setdefault(t["execution_id"], {})[t["step_id"]] = r.timestamp
    finally:
        await consumer.stop()
    return out


async def sample_overheads(settings: Settings, base: str, plan: dict, ids: list[str],
                           n: int) -> dict[str, list[float]]:
    pick = ids[:: max(len(ids) // n, 1)][:n]
    history: dict[str, list[dict]] = {}
    sem = asyncio.Semaphore(8)
    async with aiohttp.ClientSession() as session:
        async def one(eid: str) -> None:
            async with sem, session.get(f"{base}/api/v1/executions/{eid}/events",
                                        params={"limit": "1000"}) as r:  # fmt: skip
                history[eid] = (await r.json())["data"]["items"]

        await asyncio.gather(*(one(e) for e in pick))
        async with session.get(f"{base}/api/v1/stats/realtime") as r:
            gen = int(((await r.json())["data"].get("generation") or {}).get("number") or 0)
    tasks = await task_times(settings.model_copy(update={"generation": gen}), set(pick))
    allv: dict[str, list[float]] = {k: [] for k in KINDS}
    for eid, events in history.items():
        for k, v in overheads(plan, events, tasks.get(eid, {})).items():
            allv[k] += v
    print(f"  events of {len(pick)} executions read; their tasks found for {len(tasks)} in "
          f"generation {gen}'s tasks topic", flush=True)
    return allv


async def phase(base: str, plan: dict, name: str, rate: float, seconds: float,
                max_wait: float) -> tuple[dict[str, Any], list[str]]:
    wf = f"bench_orch_{name}_{uuid.uuid4().hex[:8]}"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256),
                                     timeout=aiohttp.ClientTimeout(total=120)) as session:
        ids, errors, took = await start_at_rate(session, base, plan, wf, rate, seconds)
        await wait_finished(session, base, wf, len(ids), max_wait)
        rows = await executions_of(session, base, wf)
    result = {"rate": round(rate, 1), "seconds": seconds, "start_errors": dict(errors),
              "starts_accepted_per_s": round(len(ids) / took, 1), **throughput(rows, len(ids))}
    print(f"  {name}: {result['executions_per_s']:,} executions/s, {result['steps_per_s']:,} "
          f"steps/s, unfinished {result['unfinished']}, statuses {result['statuses']}",
          flush=True)  # fmt: skip
    return result, ids


def main(seconds: float = 20.0, rate: float = 400.0, plan: str = "composite",
         sample: int = 300, max_wait: float = 600.0) -> None:
    if plan not in ("composite", "flat"):
        raise typer.BadParameter("--plan is composite or flat")
    stub_proc, stub = start_stub()
    try:
        with running_product() as (settings, base):
            print(f"machine: {machine()}; plan {plan}; stub {stub}; product log "
                  f"{settings.data_dir.parent / 'product.log'}", flush=True)
            body = make_plan(plan, stub)
            raw = asyncio.run(raw_baseline(settings, 20_000, 1_000))
            baseline = raw["msgs_per_s"]
            print(f"raw broker (1 kB messages): produce {raw['produce_msgs_per_s']:,.0f} "
                  f"msg/s, consume {raw['consume_msgs_per_s']:,.0f} msg/s, both "
                  f"{baseline:,.0f} msg/s", flush=True)
            print(f"saturation: {rate:g} executions/s offered for {seconds:g}s", flush=True)
            procs = {**product_processes(), stub_proc.pid: "stub"}
            before = cpu_now(procs)
            sat, _ = asyncio.run(phase(base, body, "saturation", rate, seconds, max_wait))
            # the whole phase, waiting included
            sat["cpu_us_per_step"] = cpu_per_unit(before, procs, sat["steps_succeeded"])
            print(f"  CPU per step (µs): {sat['cpu_us_per_step']}", flush=True)
            half_rate = sat["steps_per_s"] / 2 / STEPS
            half: dict[str, Any] = {"rate": round(half_rate, 1), "skipped": True}
            ov: dict[str, list[float]] = {k: [] for k in KINDS}
            if sat["finished"]:
                print(f"half rate: {half_rate:,.1f} executions/s for {seconds:g}s", flush=True)
                half, ids = asyncio.run(phase(base, body, "half", half_rate, seconds, max_wait))
                ov = asyncio.run(sample_overheads(settings, base, body, ids, sample))
            else:
                print("half rate: skipped, no execution finished at saturation", flush=True)
            with httpx.Client(base_url=base, timeout=30) as c:
                stub_calls = int(c.get(f"{stub}/count").text)
                dead = c.get("/api/v1/dead-letters", params={"limit": 1000}).json()["data"]
            if dead["items"]:
                print(f"  {len(dead['items'])} dead letter(s) (1000: or more); first: "
                      f"{str(dead['items'][0])[:300]}", flush=True)
    finally:
        stub_proc.terminate()
        stub_proc.wait(10)
    fig = {f"{k}_{q}": pct(v, p) for k, v in ov.items() for q, p in (("p50", .5), ("p99", .99))}
    for k, v in ov.items():
        print(f"overhead {k:13s} (n={len(v):5d}): p50 {fig[f'{k}_p50']} ms, "
              f"p99 {fig[f'{k}_p99']} ms, max {max(v, default=None)} ms")
    print(f"saturation {sat['steps_per_s']:,} steps/s (goal ≥ {GOAL_STEPS_PER_S:,}), overhead "
          f"p99 at half rate {fig['executor_p99']} ms (goal < {GOAL_OVERHEAD_P99_MS})")
    result = {
        "bench": "orchestrated", "machine": machine(), "plan": plan,
        "executions_per_s": sat["executions_per_s"], "steps_per_s": sat["steps_per_s"],
        "overhead_p50_ms": fig["executor_p50"], "overhead_p99_ms": fig["executor_p99"],
        "finish_to_task_p50_ms": fig["to_task_p50"], "finish_to_task_p99_ms": fig["to_task_p99"],
        "task_to_start_p50_ms": fig["task_to_start_p50"],
        "task_to_start_p99_ms": fig["task_to_start_p99"],
        "inline_overhead_p99_ms": fig["inline_p99"],
        "first_step_p50_ms": fig["first_p50"], "first_step_p99_ms": fig["first_p99"],
        "overhead_samples": len(ov["executor"]), "baseline_msgs_per_s": round(baseline, 1),
        "ratio": round(sat["steps_per_s"] / baseline, 4) if baseline else None,
        "saturation": sat, "half_rate": half, "stub_calls": stub_calls,
        "dead_letters": len(dead["items"]),
        "goals": {"steps_per_s": GOAL_STEPS_PER_S, "overhead_p99_ms": GOAL_OVERHEAD_P99_MS,
                  "steps_met": sat["steps_per_s"] >= GOAL_STEPS_PER_S,
                  "overhead_met": (fig["executor_p99"] or 1e9) < GOAL_OVERHEAD_P99_MS},
        "pid": os.getpid(),
    }  # fmt: skip
    print("BENCH " + orjson.dumps(result).decode())


if __name__ == "__main__":
    typer.run(main)
