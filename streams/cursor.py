"""Where each source partition stands: the last offset the worker applied there.

Faust's consumer can hand the agent a partition's messages with a hole in them around a
rebalance (a batch fetched before the worker's seek to its committed offset arrives
after it); it records the hole as a "gap", counts it as done and commits past it, so
those messages would never be applied. Measured: SIGKILL the worker three times under
load and about one run in three loses one round of reports.

So the worker keeps its own cursor in its table: per source partition, the last offset
it applied, written after the batch's states and to the same changelog partition (so a
recovered cursor never claims more than the recovered states hold). Every message is
admitted against it, in offset order:

- at or below the cursor: already applied (a redelivery after a restart): skipped;
- the next offset: applied, and the cursor moves on;
- beyond the next offset: a hole. The partition's remaining messages in the batch are
  dropped too, and the worker seeks back to the offset after the cursor.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

NOTHING_APPLIED = -1
_PREFIX = b"\x00applied\x00"  # no execution id can start with NUL (ids are validated)

SourcePartition = tuple[str, int]  # (topic, partition)


def cursor_key(tp: SourcePartition) -> bytes:
    """The table key that holds ``tp``'s cursor."""
    return _PREFIX + f"{tp[0]}\x00{tp[1]}".encode()


def is_cursor_key(key: bytes) -> bool:
    return key.startswith(_PREFIX)


@dataclass
class Admission:
    """What to do with one batch: ``apply[i]`` for the batch's i-th message, the cursors
    after it (only partitions that moved), and the offset to seek back to per
    partition with a hole."""

    apply: list[bool] = field(default_factory=list)
    moved: dict[SourcePartition, int] = field(default_factory=dict)
    holes: dict[SourcePartition, int] = field(default_factory=dict)


def admit(batch: Iterable[tuple[SourcePartition, int]],
          cursors: Mapping[SourcePartition, int]) -> Admission:
    """Admit a batch of (partition, offset), in the order the agent got them."""
    out = Admission()
    at = dict(cursors)
    for tp, offset in batch:
        cursor = at.get(tp, NOTHING_APPLIED)
        if tp in out.holes or offset <= cursor:
            out.apply.append(False)
        elif offset == cursor + 1:
            out.apply.append(True)
            at[tp] = out.moved[tp] = offset
        else:
            out.apply.append(False)
            out.holes[tp] = cursor + 1
    return out
