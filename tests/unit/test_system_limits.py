"""Per-system caps on step tasks in flight: counted with events, never with the clock."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from runledger.settings import Settings
from streams.contracts import StepTask
from streams.executors.registry import ExecutorContext, Result
from streams.executors.service import ExecutorService
from streams.executors.system_limits import SystemLimits, fetch_room
from streams.validation import ApiCallConfig


class Load:
    """Tasks that hold their slot until their system's gate opens, counting who runs."""

    def __init__(self, limits: SystemLimits) -> None:
        self.limits = limits
        self.running: Counter[str | None] = Counter()
        self.most: Counter[str | None] = Counter()
        self.done: Counter[str | None] = Counter()
        self.gates: dict[str | None, asyncio.Event] = {}

    def gate(self, system: str | None) -> asyncio.Event:
        return self.gates.setdefault(system, asyncio.Event())

    async def task(self, system: str | None) -> None:
        async with self.limits.slot(system):
            self.running[system] += 1
            self.most[system] = max(self.most[system], self.running[system])
            await self.gate(system).wait()
            self.running[system] -= 1
            self.done[system] += 1

    def start(self, system: str | None, count: int) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self.task(system)) for _ in range(count)]


async def settle(condition: Callable[[], bool], rounds: int = 1000) -> None:
    """Let the event loop run until ``condition`` holds (loop turns, not seconds)."""
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def finish(tasks: list[asyncio.Task[None]]) -> None:
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)  # a hang guard, no timing


def _in_flight_metric(system: str) -> float | None:
    return REGISTRY.get_sample_value("runledger_executor_system_in_flight", {"system": system})


async def test_a_capped_system_runs_at_most_its_cap_while_others_run_freely():
    limits = SystemLimits({"ERP": 2})
    load = Load(limits)
    erp = load.start("ERP", 6)
    await settle(lambda: load.running["ERP"] == 2 and limits.waiting == 4)
    assert limits.in_flight("ERP") == 2
    assert _in_flight_metric("ERP") == 2
    load.gate("FIN").set()
    await finish(load.start("FIN", 10))  # ERP is full and stuck: FIN does not wait for it
    assert load.done["FIN"] == 10
    assert load.running["ERP"] == 2 and limits.waiting == 4
    load.gate("ERP").set()
    await finish(erp)
    assert load.done["ERP"] == 6
    assert load.most["ERP"] == 2
    assert limits.waiting == 0 and limits.in_flight("ERP") == 0
    assert _in_flight_metric("ERP") == 0


async def test_the_default_cap_covers_every_system_not_named():
    limits = SystemLimits({"ERP": 1}, default=3)
    load = Load(limits)
    crm, erp = load.start("CRM", 5), load.start("ERP", 2)
    await settle(lambda: load.running["CRM"] == 3 and load.running["ERP"] == 1)
    assert limits.waiting == 2 + 1
    for system in ("CRM", "ERP"):
        load.gate(system).set()
    await finish(crm + erp)
    assert (load.most["CRM"], load.most["ERP"]) == (3, 1)


async def test_tasks_without_a_system_are_never_capped():
    limits = SystemLimits({"ERP": 1}, default=1)
    load = Load(limits)
    free = load.start(None, 8)
    await settle(lambda: load.running[None] == 8)
    assert limits.waiting == 0
    load.gate(None).set()
    await finish(free)


async def test_uncapped_systems_run_freely_without_a_default():
    limits = SystemLimits({"ERP": 1})
    load = Load(limits)
    crm = load.start("CRM", 6)
    await settle(lambda: load.running["CRM"] == 6)
    assert limits.cap("CRM") is None and limits.waiting == 0
    load.gate("CRM").set()
    await finish(crm)


async def test_a_new_cap_applies_to_tasks_that_arrive_after_it():
    limits = SystemLimits({"ERP": 1})
    load = Load(limits)
    first = load.start("ERP", 3)
    await settle(lambda: load.running["ERP"] == 1 and limits.waiting == 2)
    limits.set_caps({"ERP": 3})
    raised = load.start("ERP", 2)  # a new semaphore of 3: both start at once
    await settle(lambda: load.running["ERP"] == 3)
    assert limits.waiting == 2  # those that met the old cap still wait under it
    limits.set_caps({})  # no cap any more
    freed = load.start("ERP", 4)
    await settle(lambda: load.running["ERP"] == 7)
    load.gate("ERP").set()
    await finish(first + raised + freed)
    assert load.done["ERP"] == 9 and limits.waiting == 0


async def test_a_lowered_cap_makes_new_tasks_wait():
    limits = SystemLimits({"ERP": 5})
    load = Load(limits)
    limits.set_caps({"ERP": 1})
    erp = load.start("ERP", 3)
    await settle(lambda: load.running["ERP"] == 1 and limits.waiting == 2)
    load.gate("ERP").set()
    await finish(erp)
    assert load.most["ERP"] == 1


def test_caps_below_one_are_refused_and_change_nothing():
    limits = SystemLimits({"ERP": 2}, default=4)
    with pytest.raises(ValueError):
        limits.set_caps({"ERP": 0})
    with pytest.raises(ValueError):
        limits.set_caps({}, default=0)
    assert (limits.cap("ERP"), limits.cap("CRM"), limits.cap(None)) == (2, 4, None)
    with pytest.raises(ValueError):
        SystemLimits({"ERP": -1})


async def test_a_task_cancelled_while_waiting_gives_back_its_place():
    limits = SystemLimits({"ERP": 1})
    load = Load(limits)
    holder, waiter = load.start("ERP", 2)
    await settle(lambda: load.running["ERP"] == 1 and limits.waiting == 1)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert limits.waiting == 0
    load.gate("ERP").set()
    await finish([holder])
    assert limits.in_flight("ERP") == 0


def test_caps_come_from_settings(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RUNLEDGER_SYSTEM_CONCURRENCY", '{"ERP": 5, "FIN": 2}')
    monkeypatch.setenv("RUNLEDGER_SYSTEM_CONCURRENCY_DEFAULT", "7")
    limits = SystemLimits.from_settings(Settings())
    assert (limits.cap("ERP"), limits.cap("FIN"), limits.cap("CRM")) == (5, 2, 7)
    monkeypatch.delenv("RUNLEDGER_SYSTEM_CONCURRENCY")
    monkeypatch.delenv("RUNLEDGER_SYSTEM_CONCURRENCY_DEFAULT")
    plain = Settings()
    assert (plain.system_concurrency, plain.system_concurrency_default) == ({}, None)


def test_fetch_room_counts_only_running_tasks_against_the_budget():
    assert fetch_room(4, jobs=0, waiting=0) == 4
    assert fetch_room(4, jobs=4, waiting=0) == 0  # all running
    assert fetch_room(4, jobs=6, waiting=3) == 1  # 3 run, 3 wait
    assert fetch_room(4, jobs=5, waiting=4) == 0  # as many wait as may: no more
    assert fetch_room(4, jobs=8, waiting=4) == 0


class _Blocking:
    """An executor whose calls wait for ``release``, counting those in flight."""

    type = "api_call"
    config_model = ApiCallConfig

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.in_flight: Counter[str | None] = Counter()
        self.most: Counter[str | None] = Counter()

    async def run(self, task: StepTask, ctx: ExecutorContext) -> Result:
        self.in_flight[task.system] += 1
        self.most[task.system] = max(self.most[task.system], self.in_flight[task.system])
        await self.release.wait()
        self.in_flight[task.system] -= 1
        return Result.success({"ok": True})


async def test_the_executor_service_holds_a_slot_around_each_task(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, system_concurrency={"ERP": 2})
    executor = _Blocking()
    service = ExecutorService(settings, {"api_call": executor})
    sent: list[bytes] = []

    async def send(execution_id: str, update: bytes) -> None:
        sent.append(update)

    service._send = send  # type: ignore[method-assign]
    try:
        tasks = [StepTask(task_id=f"ex{i}/s/1", execution_id=f"ex{i}", step_id="s", attempt=1,
                          type="api_call", system=system, dispatched_at=0,
                          config={"url": "http://erp.invalid/"})
                 for i, system in enumerate(["ERP"] * 5 + ["FIN"] * 3)]  # fmt: skip
        jobs = [asyncio.create_task(service._execute(task)) for task in tasks]
        await settle(lambda: executor.in_flight["ERP"] == 2 and executor.in_flight["FIN"] == 3)
        assert service.system_limits.waiting == 3
        room = fetch_room(service.concurrency, len(jobs), service.system_limits.waiting)
        assert room == service.concurrency - 5  # the 3 waiting take none of the budget
        executor.release.set()
        await finish(jobs)
        assert executor.most["ERP"] == 2
        assert sum(b'"succeeded"' in update for update in sent) == 8
    finally:  # never started, but closed, so nothing warns at exit
        service.outcomes.close()
        await service.ctx.http.aclose()
        await service.consumer.stop()
        await service.producer.stop()
