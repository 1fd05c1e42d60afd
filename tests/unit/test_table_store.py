"""The worker's table store keeps states compressed: the states of open executions are most
of a worker's memory. It reads back exactly what was written, in either form."""

from __future__ import annotations

from streams.preload import PreloadedMemoryStore
from tests.unit.runs import reported


def _store() -> PreloadedMemoryStore:
    return PreloadedMemoryStore("preloaded-memory://", app=None, table=None,
                                table_name="executions")  # fmt: skip


def test_a_state_is_kept_compressed_and_reads_back_as_written():
    store, value = _store(), reported(5).stored_json().encode()
    store[b"ex_1"] = value
    assert len(store.data[b"ex_1"]) < 0.3 * len(value)
    assert store[b"ex_1"] == value and store.get(b"ex_1") == value
    assert b"ex_1" in store and store.get(b"ex_2") is None


def test_short_values_and_what_recovery_put_there_read_back_unchanged():
    store, value = _store(), reported(5).stored_json().encode()
    store[b"cursor"] = b"12345"  # a cursor's offset: too short to pack
    store.data[b"ex_1"] = value  # as Faust's recovery and the preload write: plain
    assert store[b"cursor"] == b"12345" and store.data[b"cursor"] == b"12345"
    assert store[b"ex_1"] == value
