"""An execution's stored form (``ExecutionState.stored_json``): what the worker keeps in
its table and the projector writes to ClickHouse leaves out every field at its default."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined, to_jsonable_python

from streams.state import ExecutionState
from tests.unit.runs import as_stored, reported

PINNED = Path(__file__).with_name("stored_state_defaults.json")


def _models(tp: Any, seen: dict[str, type[BaseModel]]) -> None:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if tp.__name__ in seen:
            return
        seen[tp.__name__] = tp
        for f in tp.model_fields.values():
            _models(f.annotation, seen)
    for arg in typing.get_args(tp):
        _models(arg, seen)


def stored_defaults() -> dict[str, Any]:
    """"Model.field" → its default, for every model an execution's state holds."""
    seen: dict[str, type[BaseModel]] = {}
    _models(ExecutionState, seen)
    out = {}
    for name, model in sorted(seen.items()):
        for field, info in model.model_fields.items():
            default = info.default if info.default_factory is None else info.default_factory()  # type: ignore[call-arg]
            if default is not PydanticUndefined:
                out[f"{name}.{field}"] = to_jsonable_python(default)
    return out


def test_the_defaults_of_a_stored_state_never_change():
    """A field left out of a stored state reads back as the default of the code reading it:
    changing a default would change every running execution stored before the upgrade.
    A new field with a default is fine: add it to the pinned file."""
    assert stored_defaults() == json.loads(PINNED.read_text()), (
        f"a default of the stored state changed; see {PINNED.name}")


def test_a_reported_execution_is_stored_smaller_and_reads_back_the_same():
    state = reported(5)
    assert as_stored(state) == state
    assert len(state.stored_json()) < 0.65 * len(state.model_dump_json())


def test_a_state_stored_in_full_still_reads():
    """States written before the stored form (every field present) read back unchanged."""
    state = reported(2)
    assert ExecutionState.model_validate_json(state.model_dump_json()) == state
