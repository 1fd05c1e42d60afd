"""The worker's hands for the admission queue: its messages arrive under one key
(``ADMISSION_KEY``) in the worker's own stream, so they are applied once and in order like
an execution's; its state is one value in the worker's table (the same changelog), and
the executions it admits get an ``Admit`` on the commands topic."""

from __future__ import annotations

from typing import Any

from faust.types import EventT

from streams.admission import AdmissionState, apply
from streams.admission_contracts import ADMISSION_KEY, AdmissionMessage

KEY = ADMISSION_KEY.encode()


class AdmissionActor:
    def __init__(self, table: Any, commands: Any) -> None:
        self.table, self.commands = table, commands

    async def apply(
        self, items: list[tuple[EventT, AdmissionMessage]], acks: list[Any]
    ) -> tuple[EventT, bytes]:
        """Apply ``items`` in order, send the Admits (their acks join ``acks``); the table
        write to make once they are acked: the message it belongs to, and the value."""
        raw = self.table.get(KEY)
        state = AdmissionState.model_validate_json(raw) if raw else AdmissionState()
        for _, msg in items:
            state, admits = apply(state, msg)
            for a in admits:
                acks.append(await self.commands.send(key=a.execution_id.encode(),
                                                     value=a.model_dump_json().encode(),
                                                     force=True))  # fmt: skip
        return items[-1][0], state.model_dump_json().encode()
