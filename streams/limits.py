"""Limits on running orchestrated executions (seed 001 "执行队列", "资源限制"; seed 004
tasks 13-14): how many may run at once globally, per tenant, per workflow and per target
system, and how long the queue of those waiting may grow.

An execution counts against every scope it falls in: the global one (``*``), its tenant's,
its workflow's and each system its plan's steps call. It starts only when every one of
those scopes has room. Pure data: the API, the admission state machine and the settings
all use this one model.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

_Caps = dict[str, int]


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_running: int | None = Field(default=None, ge=1, description="running at once, in all")
    tenants: _Caps = Field(default_factory=dict, description="tenant → running at once")
    workflows: _Caps = Field(default_factory=dict, description="workflow id → running at once")
    systems: _Caps = Field(default_factory=dict, description="target system → running at once")
    max_queued: int = Field(default=10_000, ge=0, description="waiting executions before "
                            "new starts get 429")  # fmt: skip

    @property
    def enabled(self) -> bool:
        """Whether any cap on running executions is set (else nothing waits)."""
        return self.max_running is not None or bool(self.tenants or self.workflows
                                                    or self.systems)  # fmt: skip

    def cap(self, scope: str) -> int | None:
        """The cap of one scope key (see ``scopes``), or None for no cap."""
        if scope == "*":
            return self.max_running
        kind, _, name = scope.partition(":")
        table = {"tenant": self.tenants, "workflow": self.workflows, "system": self.systems}
        return table.get(kind, {}).get(name)


def scopes(tenant: str, workflow_id: str | None, systems: Iterable[str]) -> tuple[str, ...]:
    """The scope keys an execution counts in: ``*``, ``tenant:T``, ``workflow:W``,
    ``system:S`` for each system (sorted, once each)."""
    out = ["*", f"tenant:{tenant}"]
    if workflow_id:
        out.append(f"workflow:{workflow_id}")
    out += [f"system:{s}" for s in sorted(set(systems)) if s]
    return tuple(out)
