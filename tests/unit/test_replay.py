"""Recorded histories replay through today's decide()/evolve() to the same events and state.

A failure here means the state machine changed meaning for executions already recorded:
make the change backward compatible, or record new histories on purpose.
"""

from __future__ import annotations

from functools import reduce
from pathlib import Path

import orjson
import pytest
from pydantic import TypeAdapter

from streams.contracts import Event, WorkerMessage
from streams.machine import decide, evolve
from streams.state import ExecutionState
from tests.histories.record import CFG

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.jsonl"))
_message = TypeAdapter(WorkerMessage)


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
def test_recorded_history_replays_identically(path: Path) -> None:
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines() if line]
    *steps, final = lines
    state = None
    all_events: list[Event] = []
    for step in steps:
        decision = decide(state, _message.validate_python(step["in"]), CFG)
        assert [e.model_dump(mode="json") for e in decision.events] == step["out"], step["kind"]
        state = decision.state
        all_events.extend(decision.events)
    expected = ExecutionState.model_validate(final["state"])
    assert state == expected
    assert reduce(evolve, all_events, None) == expected


def test_there_are_recorded_histories() -> None:
    assert len(HISTORIES) >= 3
