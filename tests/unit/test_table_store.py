"""The worker's table store keeps states compressed: the states of open executions are most
of a worker's memory. It reads back exactly what was written, in either form."""

from __future__ import annotations

from streams.contracts import Report, ReportBatch
from streams.machine import MachineConfig, decide
from streams.preload import PreloadedMemoryStore


def _store() -> PreloadedMemoryStore:
    return PreloadedMemoryStore("preloaded-memory://", app=None, table=None,
                                table_name="executions")  # fmt: skip


def _state_json() -> bytes:
    state = None
    for i in range(5):
        for kind in ("step_started", "step_succeeded"):
            r = Report(report_id=f"ex_1-{i}-{kind}", event_type=kind, step_id=f"step_{i}",
                       timestamp=1_700_000_000_000 + i, system=f"S{i % 3}", module=f"M{i}",
                       data={"duration_ms": 5})  # fmt: skip
            msg = ReportBatch(execution_id="ex_1", received_at=1_700_000_000_100, reports=(r,))
            state = decide(state, msg, MachineConfig()).state
    assert state is not None
    return state.stored_json().encode()


def test_a_state_is_kept_compressed_and_reads_back_as_written():
    store, value = _store(), _state_json()
    store[b"ex_1"] = value
    assert len(store.data[b"ex_1"]) < 0.3 * len(value)
    assert store[b"ex_1"] == value and store.get(b"ex_1") == value
    assert b"ex_1" in store and store.get(b"ex_2") is None


def test_short_values_and_what_recovery_put_there_read_back_unchanged():
    store, value = _store(), _state_json()
    store[b"cursor"] = b"12345"  # a cursor's offset: too short to pack
    store.data[b"ex_1"] = value  # as Faust's recovery and the preload write: plain
    assert store[b"cursor"] == b"12345" and store.data[b"cursor"] == b"12345"
    assert store[b"ex_1"] == value
