"""A killed worker's consumer-group membership, ended by the worker that replaces it.

A worker killed without leaving its group (SIGKILL, OOM) stays a member until its session
times out: its replacement's JoinGroup waits for the dead member, gets an assignment that
still counts it, and a second rebalance follows when it expires (~8 s of an 18.6 s SIGKILL
restart at 1 M events, deploy/CAPACITY.md). A worker started by the supervisor
(RUNLEDGER_WORKER_INDEX set) writes its member id under the data dir after every
assignment; the next worker of that index sends LeaveGroup for it before it joins, as the
dead one would have on a clean stop. A member that already left (SIGTERM) is unknown to
the coordinator, which answers with an error and nothing else happens.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from aiokafka import errors as kafka_errors
from aiokafka.client import AIOKafkaClient, CoordinationType
from aiokafka.protocol.group import LeaveGroupRequest

from runledger.settings import Settings

log = logging.getLogger(__name__)

LEAVE_TIMEOUT_S = 5.0


def member_file(settings: Settings, group: str) -> Path | None:
    """Where a supervised worker keeps its member id of ``group``; None when unsupervised
    (several processes with no index could share a data dir and evict each other)."""
    index = os.environ.get("RUNLEDGER_WORKER_INDEX")
    if index is None:
        return None
    return settings.data_dir / "worker" / "members" / f"{group}.{index}"


def remember(path: Path | None, member_id: str) -> None:
    """Keep ``member_id`` for the replacement of this worker (written whole, then renamed)."""
    if path is None or not member_id:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(member_id)
    tmp.replace(path)


def leave_stale(settings: Settings, group: str) -> None:
    """End the membership the previous worker of this index left behind, if any."""
    path = member_file(settings, group)
    if path is None or not path.exists():
        return
    member_id = path.read_text().strip()
    loop = asyncio.new_event_loop()  # Faust's loop is made after this, and is not this one
    try:
        error = loop.run_until_complete(
            asyncio.wait_for(_leave(settings.bootstrap, group, member_id), LEAVE_TIMEOUT_S))
    except (kafka_errors.KafkaError, OSError, TimeoutError) as exc:
        error = repr(exc)
    finally:
        loop.close()
    path.unlink(missing_ok=True)
    if error is None:
        log.info("left the group for the previous worker: %s", member_id)
    else:  # it left by itself, or it expires with its session timeout as before
        log.info("the previous worker's member %s not left here: %s", member_id, error)


async def _leave(bootstrap: str, group: str, member_id: str) -> str | None:
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    try:
        await client.bootstrap()
        node = await client.coordinator_lookup(CoordinationType.GROUP, group)
        resp: Any = await client.send(node, LeaveGroupRequest(group, member_id))
        err = kafka_errors.for_code(resp.error_code)
        return None if err is kafka_errors.NoError else err.__name__
    finally:
        await client.close()


def take_over_membership(app: Any, settings: Settings) -> None:
    """Before ``app`` joins its group: end the membership the previous worker of this
    index left behind, then keep ``app``'s member id, after every assignment, where the
    next one looks."""
    path = member_file(settings, app.conf.id)
    if path is None:
        return
    leave_stale(settings, app.conf.id)

    async def on_assigned(_sender: Any, _assigned: Any, **_kw: Any) -> None:
        try:  # Faust's consumer thread holds the aiokafka consumer; no public accessor
            member_id = app.consumer._thread._ensure_consumer()._coordinator.member_id
        except AttributeError:
            return
        remember(path, member_id)

    app.on_partitions_assigned.connect(on_assigned, weak=False)
