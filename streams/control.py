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

from streams import orchestrate
from streams.builder import Builder
from streams.contracts import ControlCommand, iso_ms
from streams.state import ExecutionState, attempts_of, reported_status
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
        return
    if msg.action == "step":
        ps = orchestrate.ready_steps(st)[0]
        orchestrate.run_step(b, ps, cid, now)
        orchestrate.advance(b, cid, now)
        return
    if msg.action == "input":
        _answer(b, msg)
    elif msg.action == "resume":
        b.emit("execution_resumed", cid, now, message=f"resumed by {msg.actor}",
               data={**by, "status": "running"})
    elif msg.action == "retry":
        failed = [sid for sid, s in st.steps.items() if reported_status(s) == "failed"]
        b.emit("execution_resumed", cid, now, message=f"retrying {', '.join(failed)}",
               data={**by, "status": "running", "retry_steps": failed, **_new_timeout(st, now)})
        assert st.plan is not None
        for ps in st.plan.steps:
            if ps.id in failed:
                orchestrate.run_step(b, ps, cid, now)
    elif msg.action == "rerun":
        assert msg.step_id is not None
        reset = [msg.step_id, *_dependents(st, msg.step_id)]
        b.emit("execution_resumed", cid, now, message=f"rerun from {msg.step_id}",
               data={**by, "status": "running", "from_step": msg.step_id, "reset_steps": reset,
                     "inputs": msg.inputs or {}, **_new_timeout(st, now)})  # fmt: skip
    orchestrate.fire_timers(b, now)  # a retry that came due while paused goes now
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


def _new_timeout(st: ExecutionState, now: int) -> dict[str, Any]:
    """A retried or rerun execution gets its timeout afresh (as long as the first)."""
    if st.timeout_at is None:
        return {}
    return {"timeout_at": iso_ms(now + max(st.timeout_at - st.started_at, 0))}

