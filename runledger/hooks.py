"""Plug-in hooks (seed 003's plug-in interface), declared as entry points::

    [project.entry-points."runledger.hooks"]
    audit = "my_package.hooks:AuditHook"

The object there (a class, instantiated without arguments, or an instance) may have any
of these async methods, each called with a 5 s limit; one that raises or times out is
logged and counted (``runledger_hook_failures_total``) and changes nothing else:

- ``before_execution(workflow_id, input_data)``: by the API, before it accepts a start
  (``POST /executions``, ``/workflows/{id}/execute`` and the seeds' paths to them);
- ``after_execution(execution_id, result)``: once the execution's end is projected;
  ``result`` is the ``execution_completed`` event's data (status, outputs, error);
- ``on_step(step_id, context)`` (seed 003 calls it ``on_node_execution``): for each
  step event once projected; ``context`` is the event.

The projector calls the last two after its batch is in ClickHouse and committed; after a
crash a hook may see an event again (``event_id`` tells).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from runledger.metrics import HOOK_FAILURES
from streams.contracts import Event

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "runledger.hooks"
HOOK_TIMEOUT = 5.0
_NAMES = {"on_step": ("on_step", "on_node_execution")}


@dataclass
class Hooks:
    plugins: list[Any] = field(default_factory=list)

    @classmethod
    def load(cls, group: str = ENTRY_POINT_GROUP) -> Hooks:
        """Every hook declared under ``group``; one that fails to load is logged and left
        out."""
        found = []
        for ep in sorted(entry_points(group=group), key=lambda e: (e.name, e.value)):
            try:
                obj = ep.load()
                found.append(obj() if isinstance(obj, type) else obj)
            except Exception:
                log.exception("cannot load hook %s = %s", ep.name, ep.value)
        if found:
            log.info("hooks: %s", ", ".join(type(h).__name__ for h in found))
        return cls(found)

    async def before_execution(self, workflow_id: str | None, input_data: dict[str, Any]) -> None:
        await self._call("before_execution", workflow_id, input_data)

    async def after_events(self, events: Iterable[Event]) -> None:
        """``after_execution`` and ``on_step`` for projected ``events``."""
        if not self.plugins:
            return
        for e in events:
            if e.event_type == "execution_completed":
                await self._call("after_execution", e.execution_id, dict(e.data))
            elif e.step_id is not None and e.event_type.startswith("step_"):
                await self._call("on_step", e.step_id, e.model_dump(mode="json"))

    async def _call(self, hook: str, *args: Any) -> None:
        for plugin in self.plugins:
            fn = next((getattr(plugin, n) for n in _NAMES.get(hook, (hook,))
                       if callable(getattr(plugin, n, None))), None)  # fmt: skip
            if fn is None:
                continue
            try:
                await asyncio.wait_for(fn(*args), HOOK_TIMEOUT)
            except Exception:
                HOOK_FAILURES.labels(hook).inc()
                log.exception("hook %s.%s failed", type(plugin).__name__, hook)
