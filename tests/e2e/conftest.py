"""Start the whole product the way `make run` does (`runledger run`), once per session."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest


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


@pytest.fixture(scope="session")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    root = tmp_path_factory.mktemp("product")
    port, kafka_port = free_port(), free_port()
    env = {
        **os.environ,
        "RUNLEDGER_PORT": str(port),
        "RUNLEDGER_KAFKA_PORT": str(kafka_port),
        "RUNLEDGER_DATA_DIR": str(root / "data"),
        "RUNLEDGER_PARTITIONS": "4",
        "RUNLEDGER_WS_HEARTBEAT_INTERVAL": "1",
        "RUNLEDGER_COMMAND_WAIT": "10",
    }
    env.pop("RUNLEDGER_KAFKA_BOOTSTRAP", None)
    log_path = root / "product.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "runledger.cli", "run"], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    p = Product(proc, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", root / "data",
                log_path)
    try:
        p.wait_ready()
        yield p
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
