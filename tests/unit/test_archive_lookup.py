"""Requests that need archived states while a lookup runs share the next lookup."""

from __future__ import annotations

import asyncio

import pytest

from api.archive import ArchiveLookup
from streams.state import ExecutionState


class Archive:
    """Finished executions ``ex_0``..``ex_9``; each lookup takes until ``release`` is set."""

    def __init__(self) -> None:
        self.lookups: list[set[str]] = []
        self.release = asyncio.Event()
        self.fail_next = False

    async def load(self, ids: set[str]) -> dict[str, ExecutionState]:
        self.lookups.append(set(ids))
        await self.release.wait()
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("ClickHouse went away")
        return {i: ExecutionState(execution_id=i, status="succeeded") for i in ids
                if i.startswith("ex_")}  # fmt: skip


async def test_requests_during_a_lookup_share_the_next_one_and_get_only_their_ids():
    archive = Archive()
    lookup = ArchiveLookup(archive.load)
    first = asyncio.create_task(lookup.maybe_evicted({"ex_1", "new_1"}))
    await asyncio.sleep(0)
    later = [asyncio.create_task(lookup.maybe_evicted({f"ex_{i}", f"new_{i}"})) for i in (2, 3, 4)]
    await asyncio.sleep(0)
    archive.release.set()
    assert set(await first) == {"ex_1"}
    assert [set(await t) for t in later] == [{"ex_2"}, {"ex_3"}, {"ex_4"}]
    assert archive.lookups == [{"ex_1", "new_1"},
                               {"ex_2", "new_2", "ex_3", "new_3", "ex_4", "new_4"}]  # fmt: skip


async def test_an_idle_lookup_starts_at_once():
    archive = Archive()
    archive.release.set()
    lookup = ArchiveLookup(archive.load)
    assert set(await lookup.maybe_evicted({"ex_5"})) == {"ex_5"}
    assert set(await lookup.maybe_evicted({"ex_6"})) == {"ex_6"}
    assert archive.lookups == [{"ex_5"}, {"ex_6"}]


async def test_a_failed_lookup_fails_its_requests_only_and_a_gone_request_harms_none():
    archive = Archive()
    archive.fail_next = True
    lookup = ArchiveLookup(archive.load)
    failing = asyncio.create_task(lookup.maybe_evicted({"ex_1"}))
    await asyncio.sleep(0)
    gone = asyncio.create_task(lookup.maybe_evicted({"ex_2"}))
    kept = asyncio.create_task(lookup.maybe_evicted({"ex_3"}))
    await asyncio.sleep(0)
    gone.cancel()
    archive.release.set()
    with pytest.raises(ConnectionError):
        await failing
    assert set(await kept) == {"ex_3"}
    assert gone.cancelled()
