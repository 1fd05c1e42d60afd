"""Control commands inside decide(): pause, resume, retry, rerun, debug `step` and the
answer to a waiting step (DESIGN.md "Control verdicts"; seed 000 调试/停止).

Each accepted command emits the event the API waits for as its verdict (with the
execution's new ``status``); a refused one emits ``command_rejected`` with a reason code.
Tracked executions are run elsewhere: none of these apply to them.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from streams import orchestrate, subexec, timers
from streams.builder import Builder
from streams.composite import layout, split
from streams.contracts import ControlCommand
from streams.fanout import Unit
from streams.state import ExecutionState, attempts_of, reported_status
from streams.times import iso_ms
from streams.validation import validate_inputs


def apply(b: Builder, msg: ControlCommand) -> None:
    st = b.state
    if st is None or b.applied(msg.command_id):
        return
    refusal = _refusal(st, msg)
    if refusal is not None:
        reason, text, *extra = refusal
        b.emit("command_rejected", msg.command_id, msg.received_at, message=text,
               data={"command": msg.action, "reason": reason, "status": st.status,
                     **(extra[0] if extra else {})})  # fmt: skip
        return
    now, cid = msg.received_at, msg.command_id
    by = {"command": msg.action, "by": msg.actor}
    if msg.action == "pause":
        b.emit("execution_paused", cid, now, message=f"paused by {msg.actor}",
               data={**by, "status": "paused"})
        subexec.steer_children(b, "pause", cid, now)
        return
    if msg.action == "step":
        orchestrate.run_step(b, orchestrate.ready_steps(st)[0], cid, now)
        orchestrate.advance(b, cid, now)
        return
    if msg.action == "input":
        _answer(b, msg)
    elif msg.action == "resume":
        b.emit("execution_resumed", cid, now, message=f"resumed by {msg.actor}",
               data={**by, "status": "running"})
        subexec.steer_children(b, "resume", cid, now)
    elif msg.action == "retry":
        assert st.plan is not None
        owner = layout(st.plan).owner
        failed = [ps.id for ps in st.plan.steps if ps.id not in owner and ps.id in st.steps
                  and reported_status(st.steps[ps.id]) == "failed"]  # fmt: skip
        again = [sid for sid in _members(st, failed)
                 if reported_status(st.steps[sid]) == "failed"]  # fmt: skip
        b.emit("execution_resumed", cid, now, message=f"retrying {', '.join(failed)}",
               data={**by, "status": "running", "retry_steps": failed,
                     **({"reset_steps": again} if again else {}),
                     **_new_timeout(st, now)})  # fmt: skip
        for ps in st.plan.steps:
            if ps.id in failed:
                orchestrate.run_step(b, Unit(ps, ps.id), cid, now)
    elif msg.action == "rerun":
        assert msg.step_id is not None
        from_steps = [msg.step_id, *_dependents(st, msg.step_id)]
        reset = [*from_steps, *_members(st, from_steps)]
        b.emit("execution_resumed", cid, now, message=f"rerun from {msg.step_id}",
               data={**by, "status": "running", "from_step": msg.step_id, "reset_steps": reset,
                     "inputs": msg.inputs or {}, **_new_timeout(st, now)})  # fmt: skip
    timers.fire_timers(b, now)  # a retry that came due while paused goes now
    orchestrate.advance(b, cid, now)


def _refusal(st: ExecutionState, msg: ControlCommand) -> tuple[Any, ...] | None:
    """Why ``msg`` cannot apply to ``st`` now: (reason, message[, data]), or None."""
    action = msg.action
    if st.mode != "orchestrated" or st.plan is None:
        return ("not_orchestrated", f"{action} applies to orchestrated executions; this one is "
                "reported by other systems")  # fmt: skip
    if action in ("pause", "resume", "step", "input") and st.finished:
        return ("already_finished", f"execution already {st.status}")
    if action == "pause" and st.status != "running":
        return ("not_running", f"only a running execution can be paused (it is {st.status})")
    if action == "resume" and st.status != "paused":
        return ("not_paused", f"only a paused execution can be resumed (it is {st.status})")
    if action == "retry" and st.status != "failed":
        return ("not_failed", f"retry re-runs the failed steps of a failed execution (it is "
                f"{st.status})")  # fmt: skip
    if action == "rerun":
        if not st.finished:
            return ("not_finished", f"rerun applies to a finished execution (it is {st.status})")
        if msg.step_id is None or st.plan.step(msg.step_id) is None:
            return ("unknown_step", f"the plan has no step {msg.step_id!r}")
        owner = layout(st.plan).owner.get(msg.step_id)
        if owner is not None:
            return ("inside_composite", f"step {msg.step_id!r} runs inside {owner!r}; rerun "
                    f"from {owner!r}")  # fmt: skip
        if msg.inputs:
            problems = validate_inputs(st.plan, {**st.inputs, **msg.inputs},
                                       st.environment or "dev", None)  # fmt: skip
            if problems:
                return ("invalid_input", f"{len(problems)} problem(s) in the edited inputs",
                        {"problems": problems})
    if action == "step":
        if not st.debug or st.status != "paused":
            return ("not_debugging", "step runs the next step of a paused debug execution")
        if not orchestrate.ready_steps(st):
            return ("nothing_ready", "no step is ready to run (one is still running?)")
    if action == "input":
        return _input_refusal(st, msg)
    return None


def _input_refusal(st: ExecutionState, msg: ControlCommand) -> tuple[Any, ...] | None:
    step = st.steps.get(msg.step_id or "")
    if step is None or not step.waiting:
        return ("not_waiting", f"step {msg.step_id!r} is not waiting for input")
    assert st.plan is not None
    ps = st.plan.step(step.step_id)
    schema = (ps.config.get("input_schema") if ps else None) or {}
    try:
        errors = sorted(Draft202012Validator(schema).iter_errors(msg.data),
                        key=lambda e: list(e.absolute_path))  # fmt: skip
    except SchemaError as exc:
        return ("invalid_input", f"the step's input_schema is not valid: {exc.message}")
    if errors:
        problems = [{"field": ".".join(["data", *(str(p) for p in e.absolute_path)]),
                     "problem": e.message} for e in errors]  # fmt: skip
        return ("invalid_input", f"{len(problems)} problem(s) in the input",
                {"problems": problems})
    return None


def _answer(b: Builder, msg: ControlCommand) -> None:
    st = b.state
    assert st is not None and msg.step_id is not None
    now, cid = msg.received_at, msg.command_id
    b.emit("input_received", cid, now, step_id=msg.step_id, message=f"input from {msg.actor}",
           data={"data": msg.data, "by": msg.actor, "status": st.status})
    output = msg.data if isinstance(msg.data, dict) else {"value": msg.data}
    attempt = len(attempts_of(st.steps[msg.step_id]))
    b.emit("step_succeeded", cid, now, step_id=msg.step_id, message="input received",
           data={"attempt": attempt, "output": output})


def _dependents(st: ExecutionState, step_id: str) -> list[str]:
    """Every plan step that depends on ``step_id``, transitively, in plan order."""
    assert st.plan is not None
    found = {step_id}
    changed = True
    while changed:
        changed = False
        for ps in st.plan.steps:
            if ps.id not in found and found & set(ps.depends_on):
                found.add(ps.id)
                changed = True
    return [ps.id for ps in st.plan.steps if ps.id in found and ps.id != step_id]


def _members(st: ExecutionState, owners: list[str]) -> list[str]:
    """The steps the composites among ``owners`` ran: a parallel's branches, every
    iteration of a loop's body."""
    assert st.plan is not None
    lay = layout(st.plan)
    inside = {m for o in owners for m in lay.members.get(o, ())}
    return [sid for sid in st.steps if sid in inside or split(sid)[0] in inside
            and split(sid)[1] is not None]  # fmt: skip


def _new_timeout(st: ExecutionState, now: int) -> dict[str, Any]:
    """A retried or rerun execution gets its timeout afresh (as long as the first)."""
    if st.timeout_at is None:
        return {}
    return {"timeout_at": iso_ms(now + max(st.timeout_at - st.started_at, 0))}

