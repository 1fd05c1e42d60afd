"""Start the whole product the way `make run` does (`runledger run`), once per session."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from runledger.broker import pdeathsig_preexec
from tests.http_stub import Stub, serve


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Product:
    proc: subprocess.Popen[bytes]
    base_url: str
    ws_url: str
    data_dir: Path
    log_path: Path
    kafka_port: int = 0

    def children(self, needle: str) -> list[int]:
        """PIDs of the supervisor's children whose command line contains ``needle``."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.proc.pid and needle in cmdline:
                pids.append(int(entry.name))
        return pids

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Signal the supervisor and wait for it; SIGKILL it if it does not stop in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill_everything(self) -> None:
        """SIGKILL the supervisor and every child at once (a power cut, for processes)."""
        pids = self.children("") + [self.proc.pid]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"product exited: see {self.log_path}")
            try:
                r = httpx.get(f"{self.base_url}/ready", timeout=5)
                if r.status_code == 200:
                    return
                last = r.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.5)
        raise TimeoutError(f"not ready after {timeout}s: {last}; log: {self.log_path}")


def launch(root: Path, *, port: int | None = None, kafka_port: int | None = None,
           **env_extra: str) -> Product:
    """Start `runledger run` with its data under ``root/data`` (not waiting for ready)."""
    port, kafka_port = port or free_port(), kafka_port or free_port()
    env = {
        **os.environ,
        "RUNLEDGER_PORT": str(port),
        "RUNLEDGER_KAFKA_PORT": str(kafka_port),
        "RUNLEDGER_DATA_DIR": str(root / "data"),
        "RUNLEDGER_PARTITIONS": "4",
        "RUNLEDGER_WS_HEARTBEAT_INTERVAL": "1",
        "RUNLEDGER_COMMAND_WAIT": "10",
        **env_extra,
    }
    env.pop("RUNLEDGER_KAFKA_BOOTSTRAP", None)
    log_path = root / "product.log"
    with open(log_path, "ab") as log:
        # The product dies with the test process, even if that is killed outright.
        proc = subprocess.Popen([sys.executable, "-m", "runledger.cli", "run"], env=env,
                                stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=pdeathsig_preexec)
    return Product(proc, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", root / "data",
                   log_path, kafka_port)


@pytest.fixture(scope="session")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    # Short hot-set TTLs, so tests see finished and idle reported executions leave the
    # worker's table (and every test that reports after a pause goes through their return).
    p = launch(tmp_path_factory.mktemp("product"), RUNLEDGER_FINISHED_TTL="3",
               RUNLEDGER_IDLE_TTL="3")
    try:
        p.wait_ready()
        yield p
    finally:
        p.stop()


@pytest.fixture(scope="session")
def service() -> Iterator[Stub]:
    """A real HTTP service on 127.0.0.1 for plans to call, counting every call."""
    with serve() as s:
        yield s


@pytest.fixture
def api(product: Product) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=product.base_url, timeout=30) as client:
        yield client


def wait_for(fn, timeout: float = 30.0, interval: float = 0.2):
    """Poll ``fn`` until it returns a truthy value; return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s (last: {value!r})")
        time.sleep(interval)


class Reporter(threading.Thread):
    """Posts one `log` event per execution per round until stopped, like a busy external
    system; ``accepted`` counts, per execution, the reports that got a 202."""

    def __init__(self, base_url: str, eids: list[str], pause: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.base_url, self.eids, self.pause = base_url, eids, pause
        self.accepted = dict.fromkeys(eids, 0)
        self.rounds: list[int] = []  # the rounds that got a 202 (report ids end in -n)
        self._halt = threading.Event()

    def run(self) -> None:
        n = 0
        with httpx.Client(base_url=self.base_url, timeout=30) as api:
            while not self._halt.is_set():
                batch = [{"event_id": f"{eid}-{n}", "execution_id": eid, "event_type": "log",
                          "timestamp": "2025-09-01T10:00:00Z", "message": f"line {n}"}
                         for eid in self.eids]  # fmt: skip
                try:
                    ok = api.post("/api/v1/events", json={"events": batch}).status_code == 202
                except httpx.HTTPError:
                    ok = False
                if ok:
                    self.rounds.append(n)
                    for eid in self.eids:
                        self.accepted[eid] += 1
                n += 1
                time.sleep(self.pause)

    def stop(self) -> dict[str, int]:
        self._halt.set()
        self.join()
        return self.accepted


CHROMIUM = os.environ.get("RUNLEDGER_CHROMIUM", "/usr/bin/chromium")
# As the machine's probe runs it: no background traffic that this closed network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]  # fmt: skip
SCREENSHOTS = Path(__file__).parent / "screenshots"


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """Headless Debian Chromium driven by Playwright (`.ci/run` installs the package)."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: `apt-get install chromium` (.ci/run does) "
                           "or set RUNLEDGER_CHROMIUM")  # fmt: skip
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, product: Product, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh browser context on the product's page; errors in the page fail the test, and
    its last state is kept as a screenshot (last-<test>.png)."""
    context = chromium.new_context(viewport={"width": 1500, "height": 950},  # type: ignore[attr-defined]
                                   accept_downloads=True, base_url=product.base_url)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.errors = errors
    yield pg
    with contextlib.suppress(Exception):
        shot(pg, f"last-{request.node.name}")
    context.close()
    assert not errors, f"errors in the page: {errors}"


def shot(page, name: str) -> None:
    """A screenshot of a main state, under tests/e2e/screenshots/ (not committed)."""
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
