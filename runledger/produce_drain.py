"""Producers send every batch a broker leads once one of them is due, as the Java client
does, instead of one produce request per partition batch as it comes due.

aiokafka 0.14 lets each partition's batch linger on its own clock and sends only the
batches whose linger is over. With 12 partitions of the events topic and 12 of the
changelog written at once, the worker's batches came due one after another, each in a
produce request of its own: many small requests, each a compression, a socket write and
a request for the broker to handle. Java's ``RecordAccumulator`` drains every partition
of a node that has one batch ready. Here too: when ``drain_by_nodes`` finds a batch due,
the batches of the same leader are due with it.
"""

from __future__ import annotations

import functools
from typing import Any

from aiokafka.producer.message_accumulator import MessageAccumulator

_MARK = "_runledger_drain_whole_node"


def patch_producer_drain() -> None:
    """Idempotent; aiokafka is pinned (pyproject.toml) because this reads its internals."""
    original: Any = MessageAccumulator.drain_by_nodes
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def drain_by_nodes(self: Any, ignore_nodes: Any, muted_partitions: Any = frozenset()) -> Any:
        leader_of = self._cluster.leader_for_partition
        due = {leader_of(tp) for tp, batches in self._batches.items()
               if tp not in muted_partitions and batches[0].remaining_linger() is None}
        for tp, batches in self._batches.items():
            if tp not in muted_partitions and leader_of(tp) in due - {None, -1}:
                batches[0]._linger_time = 0  # due with the others of its node
        return original(self, ignore_nodes, muted_partitions)

    setattr(drain_by_nodes, _MARK, True)
    MessageAccumulator.drain_by_nodes = drain_by_nodes  # type: ignore[method-assign]
