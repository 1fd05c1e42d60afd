"""Parallel and loop steps inside decide() (pure): which of their members may start, and
when the composite step itself is done (DESIGN.md plan contract; seed 003 并行/循环).

- ``parallel``: starts its branches (at most ``max_concurrent`` at once). With
  ``wait_for_all`` it ends when every branch has: failed if one failed, else succeeded
  with ``{branch: output}``. Without it the first branch that succeeds decides: the
  others still running are stopped, those not started are skipped.
- ``loop``: runs its body once per item of ``items`` (fixed when the loop starts) or
  while ``condition`` holds (evaluated before each iteration, ``loop.index`` from 0), at
  most ``max_iterations`` times, one iteration after the other. A failed body step ends
  the loop as failed with ``break_on_error`` (the default), else its error is recorded in
  that iteration's result and the loop goes on. Output: ``{"results": [...],
  "iterations": n}``, one ``{body step: output}`` per iteration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streams.builder import Builder
from streams.composite import layout, qualify, split
from streams.plan import PlanStep
from streams.state import ACTIVE_STEP_STATUSES, DONE_STEP_STATUSES, ExecutionState, attempts_of
from streams.steps import loop_context, template_context
from streams.templates import ExpressionError, evaluate, render

_DONE = DONE_STEP_STATUSES | {"stopped"}


@dataclass(frozen=True)
class Unit:
    """A step that may start now: its plan step and its step id (``call[2]`` in a loop)."""

    ps: PlanStep
    sid: str


def member_units(st: ExecutionState, statuses: Mapping[str, str]) -> list[Unit]:
    """Members of running composites whose turn it is (dependencies aside: the caller
    checks those with :func:`deps_of`)."""
    assert st.plan is not None
    lay = layout(st.plan)
    out: list[Unit] = []
    for owner, members in lay.members.items():
        if statuses.get(owner) != "running":
            continue
        ps = st.plan.step(owner)
        assert ps is not None
        if lay.kinds[owner] == "parallel":
            cap = int(ps.config.get("max_concurrent") or len(members))
            active = sum(1 for m in members if statuses.get(m) in ACTIVE_STEP_STATUSES)
            if active < cap:
                out += [Unit(_plan(st, m), m) for m in members if statuses.get(m) == "pending"]
        else:
            i = _iteration(st, owner, statuses)
            if i < 0 or _iteration_done(st, owner, i, statuses):
                i += 1  # settle() already ended the loop if there is no next iteration
            out += [Unit(_plan(st, m), qualify(m, i)) for m in members
                    if statuses.get(qualify(m, i), "pending") == "pending"]  # fmt: skip
    return out


def deps_of(unit: Unit) -> list[str]:
    """A unit's dependencies as step ids (in a loop: the same iteration's)."""
    _, i = split(unit.sid)
    return [d if i is None else qualify(d, i) for d in unit.ps.depends_on]


def settle(b: Builder, statuses: Mapping[str, str], cause_id: str, now: int) -> bool:
    """End one running composite whose members decided it; True if it emitted."""
    st = b.state
    assert st is not None and st.plan is not None
    lay = layout(st.plan)
    for owner, members in lay.members.items():
        if statuses.get(owner) != "running":
            continue
        ps = _plan(st, owner)
        if lay.kinds[owner] == "parallel":
            if _settle_parallel(b, ps, members, statuses, cause_id, now):
                return True
        elif _settle_loop(b, ps, members, statuses, cause_id, now):
            return True
    return False


def _settle_parallel(
    b: Builder, ps: PlanStep, members: tuple[str, ...], statuses: Mapping[str, str],
    cause_id: str, now: int,
) -> bool:  # fmt: skip
    st = b.state
    assert st is not None
    won = [m for m in members if statuses.get(m) == "succeeded"]
    if not ps.config.get("wait_for_all", True) and won:
        from streams.orchestrate import abandon  # the stop of a step lives there

        running = ACTIVE_STEP_STATUSES - {"retrying"}
        abandon(b, [m for m in members if statuses.get(m) in running], cause_id, now,
                f"{ps.id}: branch {won[0]} succeeded first")  # fmt: skip
        for m in members:  # not started, or waiting for a retry: never will
            if statuses.get(m) in ("pending", "retrying"):
                b.emit("step_skipped", cause_id, now, step_id=m,
                       message=f"{ps.id}: branch {won[0]} succeeded first",
                       data={"reason": "parallel_decided", "parallel": ps.id})  # fmt: skip
        _succeed(b, ps.id, {m: st.steps[m].output or {} for m in won}, cause_id, now)
        return True
    if not all(statuses.get(m) in _DONE for m in members):
        return False
    failed = [m for m in members if statuses.get(m) in ("failed", "blocked")]
    if failed or not won and not ps.config.get("wait_for_all", True):
        _fail(b, ps.id, failed[0] if failed else members[0], cause_id, now)
    else:
        _succeed(b, ps.id, {m: st.steps[m].output if m in st.steps else None for m in members},
                 cause_id, now)  # fmt: skip
    return True


def _settle_loop(
    b: Builder, ps: PlanStep, members: tuple[str, ...], statuses: Mapping[str, str],
    cause_id: str, now: int,
) -> bool:  # fmt: skip
    st = b.state
    assert st is not None
    i = _iteration(st, ps.id, statuses)
    if i >= 0:
        if not _iteration_done(st, ps.id, i, statuses):
            return False
        failed = [m for m in members if _member_status(st, ps.id, m, i, statuses)
                  in ("failed", "blocked")]  # fmt: skip
        if failed and ps.config.get("break_on_error", True):
            _fail(b, ps.id, qualify(failed[0], i), cause_id, now)
            return True
    try:
        more = _continues(st, ps, i + 1)
    except ExpressionError as exc:
        _fail_with(b, ps.id, str(exc), "ExpressionError", cause_id, now)
        return True
    if more:
        return False
    results = [_iteration_result(st, members, n) for n in range(i + 1)]
    _succeed(b, ps.id, {"results": results, "iterations": i + 1}, cause_id, now)
    return True


def loop_items(st: ExecutionState, ps: PlanStep, sid: str) -> list[Any] | None:
    """The items a loop starting now iterates (None: a condition loop); raises
    ExpressionError when ``items`` is not a list or longer than ``max_iterations``."""
    if ps.config.get("items") is None:
        return None
    items = render(ps.config["items"], template_context(st, sid))
    if not isinstance(items, list):
        raise ExpressionError(f"loop items must be a list, got {type(items).__name__}")
    cap = int(ps.config.get("max_iterations") or 100)
    if len(items) > cap:
        raise ExpressionError(f"loop has {len(items)} items, max_iterations is {cap}")
    return items


def _continues(st: ExecutionState, ps: PlanStep, i: int) -> bool:
    if i >= int(ps.config.get("max_iterations") or 100):
        return False
    step = st.steps.get(ps.id)
    if step is not None and step.items is not None:
        return i < len(step.items)
    condition = ps.config.get("condition")
    return bool(condition) and evaluate(str(condition), loop_context(st, ps.id, i))


def _iteration(st: ExecutionState, loop_id: str, statuses: Mapping[str, str]) -> int:
    """The loop's current iteration: the highest whose steps started (-1: none yet)."""
    assert st.plan is not None
    body = set(layout(st.plan).members.get(loop_id, ()))
    best = -1
    for sid in st.steps:
        base, i = split(sid)
        if i is not None and i > best and base in body and statuses.get(sid) != "pending":
            best = i
    return best


def _member_status(
    st: ExecutionState, loop_id: str, m: str, i: int, statuses: Mapping[str, str]
) -> str:
    """Body step ``m`` in iteration ``i``: its status, ``blocked`` if it never started and
    a step it depends on failed, ``skipped`` if every one it depends on was skipped."""
    own = statuses.get(qualify(m, i), "pending")
    if own != "pending":
        return own
    deps = [_member_status(st, loop_id, d, i, statuses) for d in _plan(st, m).depends_on]
    if any(d in ("failed", "blocked") for d in deps):
        return "blocked"
    if deps and all(d == "skipped" for d in deps):
        return "skipped"
    return "pending"


def _iteration_done(st: ExecutionState, loop_id: str, i: int, statuses: Mapping[str, str]) -> bool:
    assert st.plan is not None
    return all(_member_status(st, loop_id, m, i, statuses) in _DONE
               for m in layout(st.plan).members.get(loop_id, ()))  # fmt: skip


def _iteration_result(st: ExecutionState, members: tuple[str, ...], i: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in members:
        step = st.steps.get(qualify(m, i))
        attempts = attempts_of(step) if step is not None else []
        if step is not None and step.output is not None and attempts \
                and attempts[-1].status == "succeeded":  # fmt: skip
            out[m] = step.output
        elif attempts and attempts[-1].status == "failed":
            out[m] = {"error": attempts[-1].error, "error_type": attempts[-1].error_type}
    return out


def _plan(st: ExecutionState, step_id: str) -> PlanStep:
    assert st.plan is not None
    ps = st.plan.step(step_id)
    assert ps is not None
    return ps


def _started_at(st: ExecutionState, sid: str) -> int | None:
    attempts = attempts_of(st.steps[sid]) if sid in st.steps else []
    return attempts[-1].started_at if attempts and attempts[-1].status == "running" else None


def _succeed(b: Builder, sid: str, output: dict[str, Any], cause_id: str, now: int) -> None:
    st = b.state
    assert st is not None
    start = _started_at(st, sid)
    b.emit("step_succeeded", cause_id, now, step_id=sid, message=f"{sid} done",
           data={"attempt": len(attempts_of(st.steps[sid])), "output": output,
                 "duration_ms": max(now - start, 0) if start is not None else 0})  # fmt: skip


def _fail(b: Builder, sid: str, member: str, cause_id: str, now: int) -> None:
    st = b.state
    assert st is not None
    step = st.steps.get(member)
    last = attempts_of(step)[-1] if step is not None and attempts_of(step) else None
    error_type = (last.error_type if last is not None else None) or "BranchBlocked"
    _fail_with(b, sid, f"step {member} failed" + (f": {last.error}" if last and last.error
               else ""), error_type, cause_id, now)  # fmt: skip


def _fail_with(b: Builder, sid: str, error: str, error_type: str, cause_id: str, now: int) -> None:
    st = b.state
    assert st is not None
    start = _started_at(st, sid)
    b.fail_step(sid, len(attempts_of(st.steps[sid])), error, error_type, cause_id, now,
                max(now - start, 0) if start is not None else 0)
