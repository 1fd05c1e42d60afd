"""Shared by the benchmarks: start the product as `make run` does, describe the machine."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from projections.clickhouse import ClickHouse
from runledger.broker import EmbeddedBroker, pdeathsig_preexec
from runledger.generations import process_rss_mb
from runledger.settings import Settings


def machine() -> dict[str, float]:
    with open("/proc/meminfo") as f:
        kb = int(f.readline().split()[1])
    return {"cores": os.cpu_count() or 0, "ram_gb": round(kb / 1024 / 1024, 1)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_product(partitions: int = 12, **env_extra: str) -> Iterator[tuple[Settings, str]]:
    root = Path(tempfile.mkdtemp(prefix="runledger-bench-"))
    port, kafka_port = free_port(), free_port()
    env = {**os.environ, "RUNLEDGER_PORT": str(port), "RUNLEDGER_KAFKA_PORT": str(kafka_port),
           "RUNLEDGER_DATA_DIR": str(root / "data"), "RUNLEDGER_PARTITIONS": str(partitions),
           **env_extra}
    env.pop("RUNLEDGER_KAFKA_BOOTSTRAP", None)
    log = open(root / "product.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "runledger.cli", "run"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, preexec_fn=pdeathsig_preexec)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ok(f"{base_url}/ready", 180, f"the product; log: {root / 'product.log'}", proc)
        settings = Settings(kafka_bootstrap=f"127.0.0.1:{kafka_port}", partitions=partitions,
                            data_dir=root / "data")
        yield settings, base_url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def wait_ok(url: str, seconds: float, what: str, proc: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers 200; RuntimeError naming ``what`` past ``seconds``
    or once ``proc`` has exited."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or (proc is not None and proc.poll() is not None):
            raise RuntimeError(f"not ready: {what}")
        time.sleep(0.5)


@contextmanager
def broker_and_clickhouse(name: str) -> Iterator[tuple[Settings, ClickHouse]]:
    """An embedded broker and a chDB dir of their own, for in-process benchmarks."""
    root = Path(tempfile.mkdtemp(prefix=f"runledger-{name}-bench-"))
    broker = EmbeddedBroker(free_port(), root / "broker.log")
    broker.start()
    ch = ClickHouse(f"chdb://{root / 'ch'}")
    try:
        print(f"machine: {machine()}", flush=True)
        yield Settings(kafka_bootstrap=broker.bootstrap, partitions=12, data_dir=root), ch
    finally:
        ch.close()
        broker.stop()


def rss_mb(field: str = "VmRSS") -> float:
    """This process's memory (VmRSS now, VmHWM the peak), in MB."""
    return process_rss_mb("self", field) or 0.0


def reset_peak_rss() -> None:
    """Start VmHWM afresh, so a peak measures one phase."""
    Path("/proc/self/clear_refs").write_text("5")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) ``pid`` has used so far, in seconds; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_now(pids: Iterable[int]) -> dict[int, float]:
    """``cpu_seconds`` of each pid, to pass to ``cpu_per_unit`` later."""
    return {pid: cpu_seconds(pid) for pid in pids}


def role_of(name: str) -> str:
    """A product process's role: the last word of its name (``product_processes``)."""
    return name.split()[-1]


def cpu_per_unit(before: dict[int, float], names: dict[int, str], units: int
                 ) -> dict[str, float]:  # fmt: skip
    """CPU µs per unit of work (event, step) each process used since ``before``, by role
    (the last word of its name; processes of one role add up), and "all"."""
    out: dict[str, float] = {}
    for pid, name in names.items():
        role = role_of(name)
        used = cpu_seconds(pid) - before.get(pid, 0.0)
        out[role] = round(out.get(role, 0.0) + used / max(units, 1) * 1e6, 1)
    out["all"] = round(sum(out.values()), 1)
    return out


def _proc(pid: int) -> tuple[int, str] | None:
    """(ppid, short command line) of ``pid``, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    argv = [a for a in argv if a]
    if "-m" in argv:
        name = " ".join(argv[argv.index("-m") + 1:][:2])
    else:
        name = " ".join([os.path.basename(argv[0])] + argv[1:2]) if argv else "?"
    return int(stat.rsplit(")", 1)[1].split()[1]), name[:40]


def product_processes() -> dict[int, str]:
    """The supervisor(s) this process started (`runledger.cli run`) and all below them."""
    procs = {int(p.name): info for p in Path("/proc").iterdir()
             if p.name.isdigit() and (info := _proc(int(p.name))) is not None}  # fmt: skip
    found = {pid for pid, (ppid, name) in procs.items()
             if ppid == os.getpid() and name.startswith("runledger.cli")}  # fmt: skip
    grew = True
    while grew:
        below = {pid for pid, (ppid, _) in procs.items() if ppid in found} - found
        found |= below
        grew = bool(below)
    return {pid: procs[pid][1] for pid in sorted(found)}


def rss_snapshot() -> Snapshot:
    return {pid: (name, process_rss_mb(pid)) for pid, name in product_processes().items()}


Snapshot = dict[int, tuple[str, float | None]]


def rss_report(*snaps: Snapshot) -> dict[str, list[float | None]]:
    """Print RSS per process, one column per snapshot; {"name pid": [MB, …]}."""
    out: dict[str, list[float | None]] = {}
    for pid in sorted(set().union(*snaps)):
        name = next(s[pid][0] for s in snaps if pid in s)
        mb = [s[pid][1] if pid in s else None for s in snaps]
        cols = " → ".join(f"{v:>6,.0f}" if v is not None else f"{'-':>6}" for v in mb)
        print(f"  {name:<32} pid {pid:>7}  RSS {cols} MB", flush=True)
        out[f"{name} {pid}"] = [None if v is None else round(v, 1) for v in mb]
    return out


def rss_flat(rss: dict[str, list[float | None]], slack: float = 0.10) -> bool:
    """Every process's last RSS within ``slack`` (and 20 MB) of its second (warmed-up)."""
    return all(v[1] is not None and v[-1] is not None and v[-1] <= v[1] * (1 + slack) + 20
               for v in rss.values())  # fmt: skip
