"""Messages to the admission queue (streams/admission.py), which starts queued executions
when the limits (streams/limits.py) leave room. Each crosses a process boundary on the
commands topic under one key, so one worker applies them all, in order."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from streams.limits import Limits


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Every message to the admission queue (streams/admission.py) has this key: one partition,
# one actor, applied by the worker that owns it like an execution's messages.
ADMISSION_KEY = "__admission__"


class _ToAdmission(_Frozen):
    execution_id: Literal["__admission__"] = "__admission__"
    tenant: str = "default"
    received_at: int


class Enqueue(_ToAdmission):
    """``subject`` waits for a slot in every scope of ``scopes`` (streams/limits.py)."""

    kind: Literal["enqueue"] = "enqueue"
    subject: str
    subject_tenant: str = "default"
    scopes: tuple[str, ...]
    priority: int = 0


class Occupy(_ToAdmission):
    """``subject`` runs (again: a retry or rerun of a finished one) and holds a slot."""

    kind: Literal["occupy"] = "occupy"
    subject: str
    scopes: tuple[str, ...]


class Release(_ToAdmission):
    """``subject`` finished, or left the queue: its slot or its place is free."""

    kind: Literal["release"] = "release"
    subject: str


class SetLimits(_ToAdmission):
    """The limits in force from now on (the API's, at its start and on every change)."""

    kind: Literal["limits"] = "limits"
    limits: Limits


class AdmissionReset(_ToAdmission):
    """Restore: who runs and who waits, from the archived states (the queue's own state
    went with the embedded broker)."""

    kind: Literal["admission_reset"] = "admission_reset"
    running: tuple[Occupy, ...] = ()
    queued: tuple[Enqueue, ...] = ()


AdmissionMessage = Enqueue | Occupy | Release | SetLimits | AdmissionReset
