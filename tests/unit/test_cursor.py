"""The worker's per-partition cursor: every message applied once, in offset order, however
the consumer skips or repeats them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.cursor import NOTHING_APPLIED, admit, cursor_key, is_cursor_key

TP = ("runledger.g1.step-events", 2)
OTHER = ("runledger.g1.commands", 2)


def test_a_redelivery_after_a_restart_is_skipped():
    a = admit([(TP, o) for o in (4, 5, 6, 7)], {TP: 5})
    assert a.apply == [False, False, True, True]
    assert a.moved == {TP: 7} and a.holes == {}


def test_a_hole_drops_the_rest_of_its_partition_and_asks_to_read_again():
    a = admit([(TP, 6), (OTHER, 0), (TP, 9), (TP, 7), (OTHER, 1)], {TP: 5})
    assert a.apply == [True, True, False, False, True]
    assert a.moved == {TP: 6, OTHER: 1}
    assert a.holes == {TP: 7}


def test_a_partition_without_a_cursor_starts_at_offset_zero():
    assert admit([(TP, 3)], {}).holes == {TP: 0}
    assert admit([(TP, 0)], {TP: NOTHING_APPLIED}).apply == [True]


def test_cursor_keys_never_look_like_execution_ids():
    key = cursor_key(TP)
    assert is_cursor_key(key) and not is_cursor_key(b"order-42")


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=60), st.data())
def test_every_offset_is_applied_once_in_order_whatever_the_consumer_delivers(size, data):
    """A consumer that jumps ahead (a lost prefetch) or back (a replay after a restart)
    a few times, and otherwise reads on from where it is; the worker seeks it back to
    every hole. The log is applied exactly once, in order."""
    applied: list[int] = []
    cursor = NOTHING_APPLIED
    position = 0
    disturbances = data.draw(st.integers(min_value=0, max_value=8))
    for _ in range(10 * size + 100):
        if cursor == size - 1:
            break
        batch = []
        for _ in range(data.draw(st.integers(min_value=1, max_value=6))):
            if disturbances and data.draw(st.booleans()):
                disturbances -= 1
                position = max(0, position + data.draw(st.integers(min_value=-5, max_value=5)))
            if position < size:
                batch.append((TP, position))
            position += 1
        a = admit(batch, {TP: cursor})
        applied += [o for (_, o), ok in zip(batch, a.apply, strict=True) if ok]
        cursor = a.moved.get(TP, cursor)
        if TP in a.holes:
            position = a.holes[TP]
        elif position >= size and cursor < size - 1:
            position = cursor + 1  # the consumer's commit-based restart
    assert applied == list(range(size))
