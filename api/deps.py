"""What every route needs, as Annotated dependency aliases."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, Request

from api.archive import ArchiveLookup, idle_before
from api.bus import CommandBus
from api.queue_watch import QueueWatch
from api.tail import EventTail
from projections import queries
from projections.export_status import ExportRegistry
from projections.rebuild import RebuildRun
from runledger.hooks import Hooks
from runledger.settings import Settings
from streams.executors.masking import Masker
from streams.executors.system_limits import SystemCaps
from streams.limits import Limits


@dataclass
class AppContext:
    settings: Settings
    bus: CommandBus
    tail: EventTail
    ch: Any  # projections.clickhouse.ClickHouse
    journal: Any = None  # projections.journal.JournalWriter
    projector: Any | None = None  # projections.projector.Projector, in the chDB layout
    restoring: bool = False
    switching: bool = False  # moving to the next topic generation (api/generation.py)
    # Held by a reconcile pass and by a generation switch: never both at once.
    upkeep: asyncio.Lock = field(default_factory=asyncio.Lock)
    generation: Any = None  # api.generation.GenerationInfo, when generations are on
    hot_until: OrderedDict[str, float] = field(default_factory=OrderedDict)  # api/accept.py
    accepted: OrderedDict[str, str] = field(default_factory=OrderedDict)  # id → tenant
    exports: ExportRegistry = field(default_factory=ExportRegistry)
    rebuild: RebuildRun | None = None  # the latest projection rebuild (api/routes/admin.py)
    rebuild_task: Any = None  # its asyncio.Task
    hooks: Hooks = field(default_factory=Hooks.load)  # plug-in hooks (runledger/hooks.py)
    limits: Limits = field(default_factory=Limits)  # in force (api/limits.py)
    queue: QueueWatch = field(default_factory=QueueWatch)
    edge: Any = None  # api.backpressure.EdgeLimits on app.state (body size, rate limit)
    executor_caps: SystemCaps | None = None  # what executors read (follow_limits.py)
    archive: ArchiveLookup = field(init=False)  # evicted executions' states (api/accept.py)
    _masker: Masker = field(init=False, repr=False)  # masker() without names

    def __post_init__(self) -> None:
        self.archive = ArchiveLookup(lambda ids: queries.load_states(
            self.ch, ids, finished_only=True, database=self.db,
            idle_before=idle_before(self.settings, int(time.time() * 1000))))  # fmt: skip
        self._masker = Masker.of(self.settings.mask_patterns)

    @property
    def db(self) -> str:
        return self.settings.clickhouse_database

    def masker(self, names: list[str] | tuple[str, ...] = ()) -> Masker:
        """The configured masking, plus the exact key ``names`` one request asks for. Without
        names it is one masker for the process, so its verdicts per key name are kept."""
        if names:
            return Masker.of(self.settings.mask_patterns, names)
        return self._masker

    def remember_accepted(self, execution_id: str, tenant: str) -> None:
        """Executions accepted by this process, so they read `pending` before projection."""
        self.accepted[execution_id] = tenant
        self.accepted.move_to_end(execution_id)
        while len(self.accepted) > 100_000:
            self.accepted.popitem(last=False)


async def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_context)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


def now_ms() -> int:
    return int(time.time() * 1000)


def digest(*parts: str) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=12).hexdigest()


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def command_id_for(tenant: str, action: str, key: str | None) -> str:
    """Derived from an Idempotency-Key (so a resend is the same command), else fresh."""
    return f"cmd_{digest(tenant, action, key)}" if key else new_id("cmd")
