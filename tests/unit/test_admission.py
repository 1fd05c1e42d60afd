"""The admission queue (pure): caps per scope, priority then arrival order, releases,
retries that take a slot again, resets from a restore, and decide()'s side of it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.admission import AdmissionState, apply
from streams.admission_contracts import (
    AdmissionReset,
    Enqueue,
    Occupy,
    Release,
    SetLimits,
)
from streams.contracts import Admit, StartExecution, StopExecution
from streams.limits import Limits, scopes
from tests.unit.runs import T0, Run, control, finish_ok, plan, update

AT = 1_000


def enq(subject: str, priority: int = 0, workflow: str = "wf", system: str = "ERP",
        tenant: str = "default") -> Enqueue:  # fmt: skip
    return Enqueue(received_at=AT, subject=subject, subject_tenant=tenant, priority=priority,
                   scopes=scopes(tenant, workflow, [system]))  # fmt: skip


class Queue:
    def __init__(self, limits: Limits | None = None) -> None:
        self.state = AdmissionState()
        self.admitted: list[str] = []
        if limits is not None:
            self(SetLimits(received_at=AT, limits=limits))

    def __call__(self, msg) -> list[str]:  # type: ignore[no-untyped-def]
        self.state, admits = apply(self.state, msg)
        names = [a.execution_id for a in admits]
        self.admitted += names
        return names

    @property
    def waiting(self) -> list[str]:
        return [w.subject for w in self.state.queue]


def test_nothing_is_admitted_before_the_limits_are_known():
    q = Queue()
    assert q(enq("a")) == [] and q.waiting == ["a"]
    assert q(SetLimits(received_at=AT, limits=Limits(max_running=5))) == ["a"]


def test_the_global_cap_holds_and_a_release_lets_the_next_one_in():
    q = Queue(Limits(max_running=2))
    for name in "abcd":
        q(enq(name))
    assert q.admitted == ["a", "b"] and q.waiting == ["c", "d"]
    assert q(Release(received_at=AT, subject="b")) == ["c"]
    assert q(Release(received_at=AT, subject="zzz")) == []  # unknown: nothing changes
    assert q(enq("a")) == [] and q.waiting == ["d"]  # already running: not queued again


def test_higher_priority_first_then_arrival_order():
    q = Queue(Limits(max_running=1))
    q(enq("first"))
    for name, prio in (("low", 0), ("high", 5), ("mid", 1), ("high2", 5)):
        q(enq(name, prio))
    assert q.waiting == ["high", "high2", "mid", "low"]
    for _ in range(4):
        q(Release(received_at=AT, subject=q.admitted[-1]))
    assert q.admitted == ["first", "high", "high2", "mid", "low"]


def test_a_full_workflow_or_system_does_not_hold_up_others():
    q = Queue(Limits(max_running=10, workflows={"slow": 1}, systems={"FIN": 2}))
    q(enq("s1", 9, workflow="slow"))
    q(enq("s2", 9, workflow="slow"))  # waits: its workflow is full
    q(enq("f1", system="FIN"))
    q(enq("f2", system="FIN"))
    q(enq("f3", system="FIN"))  # waits: FIN is full
    q(enq("e1"))
    assert q.admitted == ["s1", "f1", "f2", "e1"] and q.waiting == ["s2", "f3"]
    assert q(Release(received_at=AT, subject="f1")) == ["f3"]
    assert q(SetLimits(received_at=AT, limits=Limits(max_running=10))) == ["s2"]


def test_a_tenant_cap_counts_only_that_tenant():
    q = Queue(Limits(tenants={"acme": 1}))
    q(enq("a1", tenant="acme"))
    q(enq("a2", tenant="acme"))
    q(enq("b1", tenant="other"))
    assert q.admitted == ["a1", "b1"] and q.waiting == ["a2"]


def test_a_released_waiting_execution_leaves_the_queue_and_occupy_takes_a_slot():
    q = Queue(Limits(max_running=1))
    q(enq("a"))
    q(enq("b"))
    q(Release(received_at=AT, subject="b"))  # stopped while it waited
    assert q.waiting == []
    q(Occupy(received_at=AT, subject="old", scopes=scopes("default", "wf", ["ERP"])))
    q(Release(received_at=AT, subject="a"))
    q(enq("c"))
    assert q.waiting == ["c"]  # "old" (a retried execution) holds the only slot
    assert q(Release(received_at=AT, subject="old")) == ["c"]


def test_a_reset_rebuilds_running_and_waiting_in_priority_order():
    q = Queue(Limits(max_running=2))
    q(enq("gone"))
    running = (Occupy(received_at=AT, subject="r1", scopes=("*",)),)
    queued = (Enqueue(received_at=5, subject="late", scopes=("*",)),
              Enqueue(received_at=1, subject="early", scopes=("*",)),
              Enqueue(received_at=9, subject="urgent", scopes=("*",), priority=3))
    assert q(AdmissionReset(received_at=AT, running=running, queued=queued)) == ["urgent"]
    assert q.waiting == ["early", "late"] and set(q.state.running) == {"r1", "urgent"}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["enq", "rel"]), st.integers(0, 15),
                          st.integers(0, 3), st.sampled_from(["w1", "w2"])),
                max_size=80),
       st.integers(1, 4), st.integers(1, 3))  # fmt: skip
def test_no_cap_is_ever_exceeded_and_everything_fits_is_running(ops, cap, wf_cap):
    limits = Limits(max_running=cap, workflows={"w1": wf_cap})
    q = Queue(limits)
    for op, n, prio, wf in ops:
        q(enq(f"x{n}", prio, workflow=wf) if op == "enq" else Release(received_at=AT,
                                                                       subject=f"x{n}"))
        running = q.state.running
        assert len(running) <= cap
        assert sum("workflow:w1" in s for s in running.values()) <= wf_cap
        assert not set(running) & set(q.waiting)
        # Work-conserving: nothing waits that would fit now.
        full_w1 = sum("workflow:w1" in s for s in running.values()) >= wf_cap
        if len(running) < cap:
            assert all(w.scopes[2] == "workflow:w1" and full_w1 for w in q.state.queue)


QUEUED_PLAN = plan({"id": "a", "type": "transform", "system": "ERP",
                    "config": {"mapping": {"x": "1"}}},
                   {"id": "b", "type": "api_call", "dependsOn": ["a"],
                    "config": {"url": "http://fin/post"}})  # fmt: skip


def queued_start(priority: int = 0, timeout_sec: float | None = None) -> StartExecution:
    return StartExecution(execution_id="e1", received_at=T0, command_id="c1",
                          mode="orchestrated", plan=QUEUED_PLAN, queued=True, priority=priority,
                          timeout_sec=timeout_sec, workflow_id="wf")  # fmt: skip


def test_a_queued_start_waits_then_runs_on_admit_and_gives_its_slot_back():
    r = Run()(queued_start(priority=2, timeout_sec=60))
    assert r.state is not None and r.state.status == "queued"
    assert [e.event_type for e in r.events] == ["execution_started", "execution_queued"]
    assert r.tasks == [] and r.state.timeout_at is None
    [ask] = r.messages
    assert isinstance(ask, Enqueue) and (ask.subject, ask.priority) == ("e1", 2)
    assert ask.scopes == ("*", "tenant:default", "workflow:wf", "system:ERP")
    r(Admit(execution_id="e1", received_at=T0 + 700, command_id="admit:e1:1"))
    assert r.state.status == "running"
    dequeued = r.events[2]
    assert (dequeued.event_type, dequeued.data["queue_wait_ms"]) == ("execution_dequeued", 700)
    assert r.state.timeout_at == T0 + 700 + 60_000  # the timeout counts from the admission
    assert r.kinds("a")[-1] == "step_succeeded" and r.task("b").step_id == "b"
    r(Admit(execution_id="e1", received_at=T0 + 800, command_id="admit:e1:1"))
    assert len(r.events) == 2 + 1 + len(r.kinds("a")) + len(r.kinds("b"))  # changes nothing
    finish_ok(r, "b", T0 + 900)
    assert r.state.status == "succeeded"
    assert isinstance(r.messages[-1], Release) and r.messages[-1].subject == "e1"


def test_stopping_a_queued_execution_frees_its_place_and_a_late_admit_changes_nothing():
    r = Run()(queued_start())
    r(StopExecution(execution_id="e1", received_at=T0 + 5, command_id="s1"))
    assert r.state is not None and r.state.status == "stopped"
    assert isinstance(r.messages[-1], Release)
    before = len(r.events)
    r(Admit(execution_id="e1", received_at=T0 + 9, command_id="admit:e1:1"))
    assert len(r.events) == before and r.tasks == []


def test_an_unqueued_start_or_a_child_never_waits():
    r = Run()(queued_start().model_copy(update={"queued": False}))
    assert r.state is not None and r.state.status == "running" and not r.messages
    child = Run()(queued_start().model_copy(update={"parent_execution_id": "p",
                                                      "parent_step_id": "s"}))
    assert child.state is not None and child.state.status == "running"
    assert not [m for m in child.messages if isinstance(m, Enqueue)]


def test_retrying_a_finished_queued_execution_takes_a_slot_again():
    r = Run()(queued_start())
    r(Admit(execution_id="e1", received_at=T0 + 1, command_id="admit:e1:1"))
    t = r.task("b")
    r(update(t, "failed", T0 + 10, error="bad", error_type="BadRequest"))
    assert r.state is not None and r.state.status == "failed"
    assert isinstance(r.messages[-1], Release)
    r(control("retry", T0 + 20))
    assert r.state.status == "running"
    assert isinstance(r.messages[-1], Occupy) and r.messages[-1].subject == "e1"
