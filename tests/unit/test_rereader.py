"""When the worker reads a source partition again: a skipped tail, not a slow one.

The consumer here is a stand-in with the four calls the rereader makes; what Faust and
the broker do around a real hole is covered by tests/faults/test_worker_kills.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from faust.types import TP

from streams import rereader as rereader_mod
from streams.cursor import cursor_key
from streams.rereader import STILL_S, Rereader

COMMANDS = TP("runledger.g1.commands", 0)


class Consumer:
    def __init__(self, highwater: int, position: int | None) -> None:
        self.end, self.at = highwater, position
        self.seeks: list[dict[Any, int]] = []

    def highwater(self, tp: Any) -> int:
        return self.end

    async def position(self, tp: Any) -> int | None:
        return self.at

    async def earliest_offsets(self, *tps: Any) -> dict[Any, int]:
        return {tp: 0 for tp in tps}

    async def seek_wait(self, seeks: dict[Any, int]) -> None:
        self.seeks.append(dict(seeks))


class App:
    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self.assignor = self

    def assigned_actives(self) -> set[Any]:
        return {COMMANDS}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(rereader_mod.time, "monotonic", c)
    return c


async def _quiet_for(r: Rereader, clock: Clock, seconds: float) -> None:
    """Check the tails every second for ``seconds`` with nothing arriving."""
    for _ in range(int(seconds) + 1):
        await r.reread_skipped_tails()
        clock.now += 1.0


async def test_a_partition_waiting_behind_a_backlog_is_not_sought(clock: Clock) -> None:
    # Applied up to 4; the log ends at 10, but the consumer has not handed out 5 yet:
    # its messages are still in the fetcher behind other partitions.
    consumer = Consumer(highwater=10, position=5)
    r = Rereader(App(consumer), {cursor_key(COMMANDS): b"4"}, {COMMANDS.topic}, "g")
    await _quiet_for(r, clock, 3 * STILL_S)
    assert consumer.seeks == []


async def test_a_tail_handed_out_but_never_applied_is_read_again(clock: Clock) -> None:
    # The consumer went past 5..9 (dropped around a rebalance) and none came: read again.
    consumer = Consumer(highwater=10, position=10)
    r = Rereader(App(consumer), {cursor_key(COMMANDS): b"4"}, {COMMANDS.topic}, "g")
    await _quiet_for(r, clock, STILL_S + 2)
    assert consumer.seeks == [{COMMANDS: 5}]


async def test_a_tail_whose_messages_keep_arriving_is_not_sought(clock: Clock) -> None:
    consumer = Consumer(highwater=10, position=10)
    r = Rereader(App(consumer), {cursor_key(COMMANDS): b"4"}, {COMMANDS.topic}, "g")
    for _ in range(int(3 * STILL_S)):
        r.seen({COMMANDS})  # messages of the partition reach the agent (not yet applied)
        await r.reread_skipped_tails()
        clock.now += 1.0
    assert consumer.seeks == []
