"""The worker's index of due timers answers what scanning every execution would."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.due_index import DueIndex

KEYS = st.sampled_from([b"a", b"b", b"c", b"d", b"e"])
OPS = st.lists(st.one_of(
    st.tuples(st.just("set"), KEYS, st.one_of(st.none(), st.integers(0, 50))),
    st.tuples(st.just("discard"), KEYS, st.none()),
    st.tuples(st.just("scan"), st.none(), st.integers(0, 60)),
    st.tuples(st.just("clear"), st.none(), st.none()),
), max_size=60)  # fmt: skip


@given(OPS)
def test_due_keys_are_those_a_full_scan_finds_earliest_first(ops):
    index, model = DueIndex(), {}
    for op, key, value in ops:
        if op == "set":
            index.set(key, value)
            if value is None:
                model.pop(key, None)
            else:
                model[key] = value
        elif op == "discard":
            index.discard(key)
            model.pop(key, None)
        elif op == "clear":
            index.clear()
            model.clear()
        else:  # a key stays due, scan after scan, until its timer changes
            found = list(index.due(value))
            assert sorted(found) == sorted((k, d) for k, d in model.items() if d <= value)
            assert [d for _, d in found] == sorted(d for _, d in found)
        assert len(index) == len(model)


def test_many_changes_of_one_key_do_not_grow_the_heap_without_bound():
    index = DueIndex()
    for due in range(100_000):
        index.set(b"k", due)
    assert list(index.due(10**9)) == [(b"k", 99_999)]
    assert len(index._heap) < 2_000
