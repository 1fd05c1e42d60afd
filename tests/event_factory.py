"""Hand-built events for projection tests: a 6-step, 3-system tracked execution and more.

The figures the tests assert are worked out by hand in ``RECON`` below, not derived from
the code under test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.contracts import Event, event_id_for
from streams.times import iso_ms

T0 = 1_756_720_000_000  # 2025-09-01T09:46:40Z

RECON_PLAN: dict[str, Any] = {"id": "plan_recon", "name": "cross-system reconciliation", "steps": [
    {"id": "fetch_a", "system": "ERP", "module": "Orders"},
    {"id": "fetch_b", "system": "CRM", "module": "Customers"},
    {"id": "normalize", "system": "ERP", "module": "Orders", "dependsOn": ["fetch_a", "fetch_b"]},
    {"id": "match", "system": "FIN", "module": "Ledger", "dependsOn": ["normalize"]},
    {"id": "post", "system": "FIN", "module": "Ledger", "dependsOn": ["match"]},
    {"id": "notify", "system": "CRM", "module": "Mail", "dependsOn": ["match"]},
]}  # fmt: skip


@dataclass
class History:
    """Builds one execution's events with gapless seqs, as the worker would emit them."""

    execution_id: str
    workflow_id: str | None = None
    tenant: str = "default"
    events: list[Event] = field(default_factory=list)

    def add(
        self, kind: str, at: int, step_id: str | None = None, *, system: str | None = None,
        module: str | None = None, message: str = "", **data: Any,
    ) -> Event:  # fmt: skip
        seq = len(self.events) + 1
        cause = f"r-{self.execution_id}-{seq}"
        if kind.startswith("step_") or kind == "log":
            data = {**data, "report_id": cause}
        event = Event(
            event_id=event_id_for(self.execution_id, seq), cause_id=cause,
            execution_id=self.execution_id, seq=seq, event_type=kind,  # type: ignore[arg-type]
            step_id=step_id, timestamp=iso_ms(at), message=message, data=data,
            workflow_id=self.workflow_id, system=system, module=module, tenant=self.tenant,
            received_at=iso_ms(at + 5),
        )  # fmt: skip
        self.events.append(event)
        return event


def recon_execution(execution_id: str = "exec_recon") -> History:
    """6 plan steps on ERP/CRM/FIN; ``match`` fails once then succeeds; ``post`` fails.

    Records (one per started attempt), duration = reported ``duration_ms`` else end - start:
      fetch_a#1 succeeded 100..400 -> 250 (reported)   fetch_b#1 succeeded 150..500 -> 350
      normalize#1 succeeded 600..900 -> 300            match#1 failed 1000..1500 -> 500
      match#2 succeeded 2000..2600 -> 550 (reported)   post#1 failed 2700..3000 -> 300
      notify#1 succeeded, no start report: 3050..3200 -> 150 (reported)
    The execution fails (post failed), runs T0..T0+3200 = 3200 ms; failed_steps = 1.
    Seqs 1-8 are the first batch, 9-17 the second.
    """
    h = History(execution_id, workflow_id="wf_recon")
    h.add("execution_started", T0, message="execution started", mode="tracked",
          plan=RECON_PLAN, workflow_id="wf_recon", environment="test", labels={"team": "ops"},
          defined=True)  # fmt: skip
    erp, crm, fin = ("ERP", "Orders"), ("CRM", "Customers"), ("FIN", "Ledger")
    h.add("step_started", T0 + 100, "fetch_a", system=erp[0], module=erp[1])
    h.add("step_succeeded", T0 + 400, "fetch_a", system=erp[0], module=erp[1], duration_ms=250)
    h.add("step_started", T0 + 150, "fetch_b", system=crm[0], module=crm[1])
    h.add("step_succeeded", T0 + 500, "fetch_b", system=crm[0], module=crm[1])
    h.add("log", T0 + 510, "fetch_b", message="fetched 42 customers", level="info")
    h.add("step_started", T0 + 600, "normalize", system=erp[0], module=erp[1])
    h.add("step_succeeded", T0 + 900, "normalize", system=erp[0], module=erp[1])
    # second batch
    h.add("step_started", T0 + 1000, "match", system=fin[0], module=fin[1])
    h.add("step_failed", T0 + 1500, "match", system=fin[0], module=fin[1],
          error="ledger timed out", error_type="Timeout", retryable=True)  # fmt: skip
    h.add("step_started", T0 + 2000, "match", system=fin[0], module=fin[1])
    h.add("step_succeeded", T0 + 2600, "match", system=fin[0], module=fin[1], duration_ms=550)
    h.add("step_started", T0 + 2700, "post", system=fin[0], module=fin[1])
    h.add("step_failed", T0 + 3000, "post", system=fin[0], module=fin[1],
          error="HTTP 400 from ledger", error_type="Http400", retryable=False)  # fmt: skip
    h.add("log", T0 + 3010, "post", message="posting rejected", level="warning")
    h.add("step_succeeded", T0 + 3200, "notify", system="CRM", module="Mail", duration_ms=150)
    h.add("execution_completed", T0 + 3200, message="execution failed", status="failed")
    return h


def single_system_execution(execution_id: str = "exec_erp") -> History:
    """2 reported steps on ERP only, no plan, still running (5 events; batches 1-3, 4-5)."""
    h = History(execution_id, workflow_id="wf_erp")
    h.add("execution_started", T0 + 50, mode="tracked", workflow_id="wf_erp")
    h.add("step_started", T0 + 60, "load", system="ERP", module="Stock")
    h.add("step_succeeded", T0 + 160, "load", system="ERP", module="Stock")
    h.add("step_started", T0 + 200, "reserve", system="ERP", module="Stock")
    h.add("log", T0 + 210, "reserve", message="reserving", level="error")
    return h
