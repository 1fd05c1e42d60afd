"""An execution's side of the admission queue (streams/admission.py), inside decide().

A start marked ``queued`` (the API marks starts while limits are configured) records
``execution_started`` with its definition, then ``execution_queued``, and asks the queue
for a slot; it runs once an ``Admit`` comes (``execution_dequeued``, then its first
steps), and its timeout counts from then. When it finishes (or is stopped while it
waits) it gives its slot or place back; a retry or rerun of a finished one takes a slot
again without waiting. Sub-executions never queue: their parent holds a slot already.
"""

from __future__ import annotations

from streams import orchestrate
from streams.admission_contracts import Enqueue, Occupy, Release
from streams.builder import Builder, Outbound
from streams.contracts import Admit, StartExecution
from streams.limits import scopes
from streams.state import ExecutionState
from streams.times import iso_ms


def wants_queue(msg: StartExecution) -> bool:
    return (msg.queued and msg.mode == "orchestrated" and msg.plan is not None
            and msg.parent_execution_id is None)  # fmt: skip


def enqueue(b: Builder, msg: StartExecution) -> None:
    st = b.state
    assert st is not None
    data: dict[str, object] = {"priority": msg.priority}
    if msg.timeout_sec is not None:
        data["timeout_ms"] = int(msg.timeout_sec * 1000)
    b.emit("execution_queued", msg.command_id, msg.received_at,
           message="waiting for a running slot (limits)", data=data)  # fmt: skip
    b.outbound.append(Enqueue(received_at=msg.received_at, subject=st.execution_id,
                              subject_tenant=st.tenant, scopes=scopes_of(st),
                              priority=msg.priority))  # fmt: skip


def on_admit(b: Builder, msg: Admit) -> None:
    """Run a queued execution. An Admit for one that is no longer queued (stopped while it
    waited: its Release is on the way) changes nothing."""
    st = b.state
    if st is None or st.status != "queued" or b.applied(msg.command_id):
        return
    now = msg.received_at
    wait = max(0, now - (st.queued_at or now))
    data: dict[str, object] = {"queue_wait_ms": wait, **placement(st)}
    if st.queued_timeout_ms is not None:
        data["timeout_at"] = iso_ms(now + st.queued_timeout_ms)
    b.emit("execution_dequeued", msg.command_id, now,
           message=f"running after {wait} ms in the queue", data=data)  # fmt: skip
    orchestrate.advance(b, msg.command_id, now)


def notices(before: ExecutionState | None, after: ExecutionState | None,
            now: int) -> list[Outbound]:  # fmt: skip
    """What the queue must hear of this decision: a slot (or a place) freed, or taken
    again by a finished execution that runs again."""
    if after is None or not after.admission:
        return []
    was_done = before is not None and before.finished
    if after.finished and not was_done:
        return [Release(received_at=now, subject=after.execution_id)]
    if was_done and not after.finished:
        return [Occupy(received_at=now, subject=after.execution_id, scopes=scopes_of(after))]
    return []


def placement(st: ExecutionState) -> dict[str, list[str]]:
    """The systems and modules its plan names (statistics group queue waits by them)."""
    steps = st.plan.steps if st.plan is not None else ()
    return {"systems": sorted({s.system for s in steps if s.system}),
            "modules": sorted({s.module for s in steps if s.module})}


def scopes_of(st: ExecutionState) -> tuple[str, ...]:
    """Its scopes: tenant, workflow, and every system its execution or plan steps name."""
    systems = [s.system for s in st.plan.steps] if st.plan is not None else []
    return scopes(st.tenant, st.workflow_id, [s for s in (st.system, *systems) if s])
