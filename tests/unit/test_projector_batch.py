"""The projector's batch: nothing consumed is lost when a write fails or a partition is
revoked, and offsets never run ahead of what a flush takes."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import TopicPartition

from projections.batch import Batch
from streams.contracts import DeadLetter, Event, EventsMessage
from tests.event_factory import T0, recon_execution, single_system_execution

EVENTS = TopicPartition("runledger.events", 0)
OTHER = TopicPartition("runledger.events", 1)
DEAD = TopicPartition("runledger.dead-letters", 0)


def _message(events: Sequence[Event]) -> bytes:
    return EventsMessage(events=tuple(events)).model_dump_json().encode()


def _dead_letter(offset: int) -> bytes:
    letter = DeadLetter(reason="undecodable", topic="runledger.commands", partition=0,
                        offset=offset, value_b64="eA==", at=T0)  # fmt: skip
    return letter.model_dump_json().encode()


def test_a_failed_write_gives_everything_back_ahead_of_newer_messages() -> None:
    recon, erp = recon_execution().events, single_system_execution().events
    batch = Batch("runledger.dead-letters")
    assert batch.take() is None and not batch.due(1, 60)
    assert batch.add(EVENTS, 10, _message(recon[:4]))
    assert batch.add(DEAD, 3, _dead_letter(7))
    assert batch.due(4, 60) and not batch.due(5, 60)
    taken = batch.take()
    assert taken is not None
    assert [e.seq for e in taken.events] == [1, 2, 3, 4] and len(taken.dead) == 1
    assert taken.offsets == {EVENTS: 11, DEAD: 4}
    # In flight: still shown to readers of the execution, not counted as buffered.
    assert [e.seq for e in batch.pending("exec_recon", 2)] == [3, 4] and batch.events == 0
    assert batch.add(EVENTS, 11, _message(recon[4:6]))
    assert batch.add(OTHER, 0, _message(erp))
    batch.give_back(taken)
    again = batch.take()
    assert again is not None
    assert [e.seq for e in again.events if e.execution_id == "exec_recon"] == [1, 2, 3, 4, 5, 6]
    assert again.offsets == {EVENTS: 12, OTHER: 1, DEAD: 4} and len(again.dead) == 1
    batch.written()
    assert batch.pending("exec_recon") == []


def test_a_revoked_partition_is_forgotten_and_a_bad_message_only_skipped() -> None:
    recon, erp = recon_execution().events, single_system_execution().events
    batch = Batch("runledger.dead-letters")
    assert not batch.add(EVENTS, 5, b"not json")  # skipped, but its offset is consumed
    assert not batch.add(DEAD, 0, b"{}")
    assert batch.add(EVENTS, 6, _message(recon))
    assert batch.add(OTHER, 2, _message(erp))
    batch.drop({EVENTS})
    taken = batch.take()
    assert taken is not None
    assert {e.execution_id for e in taken.events} == {"exec_erp"}
    assert taken.offsets == {OTHER: 3, DEAD: 1} and taken.dead == []
    assert batch.add(OTHER, 3, _message(erp))
    batch.drop({OTHER})
    assert batch.take() is None and not batch.due(0, 0)  # nothing left to flush
