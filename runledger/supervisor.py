"""`runledger run`: embedded broker + topics + N workers + the step executor + the API, kept
alive together."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from prometheus_client.multiprocess import mark_process_dead

from runledger import generations
from runledger.broker import EmbeddedBroker, pdeathsig_preexec
from runledger.kafka import create_topics
from runledger.settings import Settings
from streams.membership import SLOT_ENV

log = logging.getLogger("runledger.supervisor")

BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 10.0
STABLE_AFTER = 30.0  # a process that ran this long before dying starts its backoff afresh
STOP_TIMEOUT = 30.0  # the API drains for up to 15 s first (api/drain.py)
POLL_INTERVAL = 0.2


def restart_delay(
    failures: int, initial: float = BACKOFF_INITIAL, maximum: float = BACKOFF_MAX
) -> float:
    """Delay before restart number ``failures`` (1-based): 0.5, 1, 2, 4, 8, 10, 10, ..."""
    if failures <= 0:
        return 0.0
    return min(maximum, initial * 2 ** min(failures - 1, 32))


def next_failures(failures: int, uptime: float, stable_after: float = STABLE_AFTER) -> int:
    """Consecutive-failure count after a death following ``uptime`` seconds of running."""
    return 1 if uptime >= stable_after else failures + 1


def metrics_dir(settings: Settings) -> Path:
    """The children's PROMETHEUS_MULTIPROC_DIR (runledger/metrics.py)."""
    return settings.data_dir.resolve() / "metrics"


def child_env(
    settings: Settings, workers: int, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of a child: ours, plus the supervisor's settings made explicit."""
    env = dict(os.environ)
    for name, value in settings.model_dump(mode="json").items():
        if value is not None:  # lists and dicts as JSON: how pydantic-settings reads them
            text = json.dumps(value) if isinstance(value, list | dict) else str(value)
            env[f"RUNLEDGER_{name.upper()}"] = text
    env["RUNLEDGER_WORKERS"] = str(workers)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir(settings))
    env.pop("RUNLEDGER_METRICS_PORT", None)  # one machine: the API's /metrics shows them all
    env.update(extra or {})
    return env


def _preexec(parent_pid: int) -> Any:
    def preexec() -> None:
        pdeathsig_preexec()
        if os.getppid() != parent_pid:  # the supervisor died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.argv, env=self.env, process_group=0, preexec_fn=_preexec(os.getpid())
        )
        self.started_at = time.monotonic()
        self.restart_at = None
        log.info("started %s (pid %d)", self.name, self.proc.pid)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Supervisor:
    settings: Settings
    workers: int
    broker: EmbeddedBroker | None = None
    children: list[Child] = field(default_factory=list)
    stopping: bool = False
    broker_failures: int = 0
    broker_started_at: float = 0.0
    broker_restart_at: float | None = None

    @property
    def metrics_dir(self) -> Path:
        return metrics_dir(self.settings)

    def build_children(self) -> None:
        base = [sys.executable, "-m", "runledger.cli"]
        for i in range(self.workers):
            env = child_env(self.settings, self.workers, {"RUNLEDGER_WORKER_INDEX": str(i),
                                                          SLOT_ENV: str(i)})  # fmt: skip
            self.children.append(Child(f"worker-{i}", [*base, "worker"], env))
        env = child_env(self.settings, self.workers, {SLOT_ENV: "executor"})
        self.children.append(Child("executor", [*base, "executor"], env))
        self.children.append(Child("api", [*base, "api"], child_env(self.settings, self.workers)))

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if not self.stopping:
            log.info("received %s, shutting down", signal.Signals(signum).name)
        self.stopping = True

    def prepare_broker(self) -> None:
        """Start the embedded broker (if any) and create the topics; raises on failure."""
        if self.settings.embedded_broker:
            if self.broker is None:
                log_path = self.settings.data_dir / "broker.log"
                self.broker = EmbeddedBroker(self.settings.kafka_port, log_path)
            self.broker.start()
            self.broker_started_at = time.monotonic()
            self.settings.broker_pid_file.write_text(str(self.broker.pid))
        # The newest generation on the broker, or the first one on a fresh broker; the
        # children find the same one themselves (runledger/generations.py).
        asyncio.run(create_topics(generations.resolve_blocking(self.settings)))

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        try:
            # One metrics dir for the children (runledger/metrics.py), empty at each start.
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
            self.metrics_dir.mkdir(parents=True)
            self.prepare_broker()
            self.build_children()
            for child in self.children:
                child.start()
            while not self.stopping:
                self.tick(time.monotonic())
                time.sleep(POLL_INTERVAL)
        finally:
            self.shutdown()
        return 0

    def tick(self, now: float) -> None:
        if self.broker is not None:
            self.check_broker(now)
            if not self.broker.alive:
                return  # children wait for the broker and its topics
        for child in self.children:
            if child.running:
                continue
            if child.restart_at is None:
                code = child.proc.returncode if child.proc else None
                child.failures = next_failures(child.failures, now - child.started_at)
                delay = restart_delay(child.failures)
                child.restart_at = now + delay
                log.warning("%s exited (code %s); restart in %.1fs", child.name, code, delay)
                if child.proc is not None:  # its live gauges leave /metrics
                    mark_process_dead(child.proc.pid, str(self.metrics_dir))
            elif now >= child.restart_at:
                child.start()

    def check_broker(self, now: float) -> None:
        assert self.broker is not None
        if self.broker.alive:
            return
        if self.broker_restart_at is None:
            uptime = now - self.broker_started_at
            self.broker_failures = next_failures(self.broker_failures, uptime)
            delay = restart_delay(self.broker_failures)
            self.broker_restart_at = now + delay
            log.error(
                "embedded broker exited (code %s); stopping children, restart in %.1fs",
                self.broker.returncode,
                delay,
            )
            # Nothing may talk to the new broker before its topics exist (Tansu would
            # auto-create them with 4 partitions), so the children go down with it.
            self.stop_children(self.children)
            return
        if now < self.broker_restart_at:
            return
        try:
            self.prepare_broker()
        except Exception as exc:
            self.broker.stop()
            self.broker_failures += 1
            delay = restart_delay(self.broker_failures)
            self.broker_restart_at = time.monotonic() + delay
            log.error("embedded broker restart failed: %s; retry in %.1fs", exc, delay)
            return
        self.broker_restart_at = None
        for child in self.children:
            child.start()

    def stop_children(self, children: list[Child]) -> None:
        """SIGTERM, wait up to STOP_TIMEOUT, then SIGKILL."""
        live = [c for c in children if c.running]
        for child in live:
            assert child.proc is not None
            log.info("stopping %s (pid %d)", child.name, child.proc.pid)
            child.proc.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in live:
            assert child.proc is not None
            try:
                child.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not exit in %.0fs, killing it", child.name, STOP_TIMEOUT)
                child.proc.kill()
                child.proc.wait()
        for child in children:
            child.restart_at = None
            child.failures = 0

    def shutdown(self) -> None:
        self.stopping = True
        self.stop_children([c for c in self.children if c.name == "api"])
        self.stop_children([c for c in self.children if c.name != "api"])
        if self.broker is not None:
            self.broker.stop(STOP_TIMEOUT)
        log.info("stopped")


def run(settings: Settings, workers: int) -> int:
    """Run everything until SIGTERM/SIGINT; returns the exit code (0)."""
    return Supervisor(settings, max(1, workers)).run()
