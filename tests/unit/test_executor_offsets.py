"""What the executor may commit while tasks finish out of order, and its finished-id LRU."""

from __future__ import annotations

from streams.executors.offsets import OffsetTracker


def test_commit_stops_at_the_lowest_unfinished_task():
    t = OffsetTracker()
    for off in (10, 11, 12):
        t.started("p0", off)
    t.finished("p0", 11)
    t.finished("p0", 12)
    assert t.committable() == {"p0": 10}  # 10 still runs: a crash re-runs 10..12
    t.mark_committed({"p0": 10})
    assert t.committable() == {}
    t.finished("p0", 10)
    assert t.committable() == {"p0": 13}


def test_partitions_are_independent_and_skips_advance():
    t = OffsetTracker()
    t.started("p0", 0)
    t.skipped("p1", 5)
    assert t.committable() == {"p0": 0, "p1": 6}
    assert t.in_flight() == 1


def test_forgotten_partition_is_not_committed_by_late_finishers():
    t = OffsetTracker()
    t.started("p0", 3)
    t.forget(["p0"])
    t.finished("p0", 3)
    assert t.committable() == {} and t.position("p0") is None
