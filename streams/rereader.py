"""Reading a source partition again from the worker's cursor when Faust's consumer
skipped messages (why, and the rules: streams/cursor.py).

A seek is expensive when the worker is behind: the consumer drops what it had fetched
for the partition and fetches it again, while messages fetched before the seek are still
queued towards the agent and look like the same hole. Measured in a 5 M-event soak with
the old 3 s / 5 s rules: 545 seeks in 30 minutes while the backlog grew to 760k records.
So a hole is sought at most once per ``RESEEK_S`` until the cursor passes it, and a tail
counts as skipped only when the consumer has handed out the partition past the cursor
and none of its messages reached the agent for ``STILL_S``. Messages still in the
fetcher (not handed out: the position has not passed them) are waiting behind other
partitions, not skipped, and seeking them would only throw their fetch away.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from runledger.metrics import CONSUMER_LAG
from streams.cursor import NOTHING_APPLIED, cursor_key

log = logging.getLogger("runledger.worker")
STILL_S = 10.0  # a cursor and a partition this long quiet while its log ends past it: a hole
RESEEK_S = 30.0  # the same hole again this soon: messages fetched before the seek
POSITION_TIMEOUT_S = 2.0


class Rereader:
    """Reads the cursors from the worker's table and seeks its consumer back to holes."""

    def __init__(self, app: Any, table: Any, sources: set[str], group: str) -> None:
        self.app, self.table, self.sources, self.group = app, table, sources, group
        self._floors: dict[Any, int] = {}  # partition → cursor under what the broker deleted
        self._sought: dict[Any, tuple[int, float]] = {}  # partition → (offset, when)
        self._still: dict[Any, tuple[int, float]] = {}  # behind: (cursor, unmoved since)
        self._seen: dict[Any, float] = {}  # partition → when a message of it last arrived
        self._tails_checked = 0.0

    def seen(self, tps: set[Any]) -> None:
        """Messages of ``tps`` reached the agent (applied or not)."""
        mono = time.monotonic()
        for tp in tps:
            self._seen[tp] = mono

    def cursors(self, tps: set[Any]) -> dict[Any, int]:
        """The last offset applied in each source partition (see streams/cursor.py)."""
        out = {}
        for tp in tps:
            raw = self.table.get(cursor_key(tp))
            out[tp] = max(int(raw) if raw else NOTHING_APPLIED,
                          self._floors.get(tp, NOTHING_APPLIED))
        return out

    async def seek_back(self, holes: dict[Any, int]) -> None:
        """Messages arrived past a hole in their partition: read again from the hole (once
        per hole every few seconds; what the broker no longer holds is reported and
        passed over)."""
        consumer: Any = self.app.consumer
        mono = time.monotonic()
        seeks = {}
        for tp, offset in holes.items():
            last = self._sought.get(tp)
            if last is not None and last[0] == offset and mono - last[1] < RESEEK_S:
                continue  # messages fetched before that seek, still arriving
            earliest = (await consumer.earliest_offsets(tp)).get(tp, 0)
            if earliest > offset:
                log.error("offsets %d..%d of %s/%d were deleted by the broker before they "
                          "were applied", offset, earliest - 1, tp.topic, tp.partition)
                self._floors[tp] = earliest - 1
                offset = earliest
            log.warning("offsets from %d of %s/%d skipped by the consumer: reading them again",
                        offset, tp.topic, tp.partition)  # fmt: skip
            self._sought[tp] = (offset, mono)
            seeks[tp] = offset
        if seeks:
            await consumer.seek_wait(seeks)

    async def reread_skipped_tails(self) -> None:
        """A hole at the end of a partition has no later message to give it away: a source
        partition whose log ends past its cursor, with the cursor still and none of its
        messages arriving for ``STILL_S``, is read again from the cursor. Sets the
        consumer-lag gauge on the way."""
        mono = time.monotonic()
        if mono - self._tails_checked < 1.0:
            return
        self._tails_checked = mono
        consumer: Any = self.app.consumer
        tps = {tp for tp in self.app.assignor.assigned_actives() if tp.topic in self.sources}
        holes = {}
        for tp, cursor in self.cursors(tps).items():
            try:
                end = consumer.highwater(tp)
            except Exception:  # not fetched yet, or revoked meanwhile
                continue
            if end is not None:
                CONSUMER_LAG.labels(self.group, tp.topic, str(tp.partition)).set(
                    max(end - cursor - 1, 0))
            if end is None or end <= cursor + 1:
                self._still.pop(tp, None)
            elif self._still.setdefault(tp, (cursor, mono))[0] != cursor:
                self._still[tp] = (cursor, mono)
            elif (mono - self._still[tp][1] > STILL_S
                  and mono - self._seen.get(tp, 0.0) > STILL_S
                  and await _handed_out(consumer, tp, cursor + 1)):
                holes[tp] = cursor + 1
        if holes:
            await self.seek_back(holes)


async def _handed_out(consumer: Any, tp: Any, offset: int) -> bool:
    """The consumer has handed out ``tp``'s message at ``offset`` (its position is past
    it); unknown counts as not."""
    try:
        position = await asyncio.wait_for(consumer.position(tp), POSITION_TIMEOUT_S)
    except Exception:  # not assigned any more, or no position yet
        return False
    return position is not None and position > offset
