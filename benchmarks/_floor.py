"""Shared by the floor benchmarks (floor.py, floor_orchestrated.py): the shape's pieces
with none of Runledger's logic, started as processes of their own."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from runledger.broker import pdeathsig_preexec

PARTITIONS = 12


def faust_app(app_id: str, bootstrap: str, datadir: str) -> Any:
    """A Faust app with the product worker's client settings (streams/app.py), an
    in-memory store and the broker fixes."""
    import faust

    from runledger.broker_quirks import patch_broker_quirks
    from runledger.kafka import FAUST_CLIENT_SETTINGS

    patch_broker_quirks()
    return faust.App(
        app_id, broker=f"kafka://{bootstrap}", store="memory://", datadir=datadir,
        processing_guarantee="at_least_once", topic_partitions=PARTITIONS,
        topic_replication_factor=1, topic_allow_declare=False, table_standby_replicas=0,
        **FAUST_CLIENT_SETTINGS, web_enabled=False, autodiscover=False,
    )  # fmt: skip


def raw_table(app: Any, name: str) -> Any:
    """A changelog-backed table of bytes keys and values, as the product's."""
    table = app.Table(name, partitions=PARTITIONS, key_type=bytes, value_type=bytes)
    table.key_serializer = table.value_serializer = "raw"
    return table


async def create_topics(bootstrap: str, names: Sequence[str]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in names])
    await admin.close()


@contextmanager
def children(script: str, argvs: Sequence[list[str]], log: Path
             ) -> Iterator[list[subprocess.Popen[bytes]]]:  # fmt: skip
    """``script`` run once per argv as a child process (log to ``log``), SIGTERMed after."""
    out = open(log, "wb")  # noqa: SIM115
    procs = [subprocess.Popen([sys.executable, script, *argv], stdout=out,
                              stderr=subprocess.STDOUT, preexec_fn=pdeathsig_preexec)
             for argv in argvs]  # fmt: skip
    try:
        yield procs
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        out.close()
