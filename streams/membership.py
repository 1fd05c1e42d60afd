"""A killed process's consumer-group membership, ended by the process that replaces it.

A worker or executor killed without leaving its group (SIGKILL, OOM) stays a member until
its session times out: its replacement's JoinGroup waits for the dead member, gets an
assignment that still counts it, and a second rebalance follows when it expires (~8 s of
an 18.6 s SIGKILL restart at 1 M events, deploy/CAPACITY.md). Worse, the embedded broker
expires a dead member only when the group has other activity: one killed just before a
generation switch stays in the old generation's group, which nobody joins again, and the
switch waits for that group to empty. So a process started by the supervisor (which
sets RUNLEDGER_MEMBER_SLOT: the worker's index, or ``executor``) writes its member id
under the data dir after every assignment; the next process of that slot sends
LeaveGroup for every member id found there, of any generation's group, before it joins,
as the dead one would have on a clean stop. A member that already left (SIGTERM) is
unknown to the coordinator, which answers with an error and nothing else happens.
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
SLOT_ENV = "RUNLEDGER_MEMBER_SLOT"


def _folder(settings: Settings) -> Path:
    return settings.data_dir / "members"


def member_file(settings: Settings, group: str) -> Path | None:
    """Where a supervised process keeps its member id of ``group``; None when unsupervised
    (several processes with no slot could share a data dir and evict each other)."""
    slot = os.environ.get(SLOT_ENV)
    return None if slot is None else _folder(settings) / f"{group}.{slot}"


def remember(path: Path | None, member_id: str) -> None:
    """Keep ``member_id`` for the replacement of this process (written whole, then renamed)."""
    if path is None or not member_id:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(member_id)
    tmp.replace(path)


def stale_members(settings: Settings) -> list[tuple[str, Path]]:
    """The groups, with their member files, that the previous process of this slot left
    behind: the current generation's group and any older one's."""
    slot = os.environ.get(SLOT_ENV)
    folder = _folder(settings)
    if slot is None or not folder.is_dir():
        return []
    suffix = f".{slot}"
    return sorted((path.name[: -len(suffix)], path) for path in folder.iterdir()
                  if path.name.endswith(suffix))  # fmt: skip


async def leave_stale(settings: Settings) -> None:
    """End every membership the previous process of this slot left behind, if any."""
    for group, path in stale_members(settings):
        member_id = path.read_text().strip()
        try:
            error = await asyncio.wait_for(_leave(settings.bootstrap, group, member_id),
                                           LEAVE_TIMEOUT_S)  # fmt: skip
        except (kafka_errors.KafkaError, OSError, TimeoutError) as exc:
            error = repr(exc)
        path.unlink(missing_ok=True)
        if error is None:
            log.info("left %s for the previous process: %s", group, member_id)
        else:  # it left by itself, or it expires with its session timeout as before
            log.info("the previous process's member %s of %s not left here: %s",
                     member_id, group, error)  # fmt: skip


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
    """Before the Faust ``app`` joins its group: end the memberships the previous worker
    of this slot left behind, then keep ``app``'s member id, after every assignment,
    where the next one looks."""
    path = member_file(settings, app.conf.id)
    if path is None:
        return
    loop = asyncio.new_event_loop()  # Faust's loop is made after this, and is not this one
    try:
        loop.run_until_complete(leave_stale(settings))
    finally:
        loop.close()

    async def on_assigned(_sender: Any, _assigned: Any, **_kw: Any) -> None:
        try:  # Faust's consumer thread holds the aiokafka consumer; no public accessor
            member_id = app.consumer._thread._ensure_consumer()._coordinator.member_id
        except AttributeError:
            return
        remember(path, member_id)

    app.on_partitions_assigned.connect(on_assigned, weak=False)
