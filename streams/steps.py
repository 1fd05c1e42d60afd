"""What orchestrated steps need, read from the state alone (pure): a step's templates
resolved (a task's config, a debug preview, an inline step's output), its input as the
log shows it (secrets masked), whether and when a failed attempt is retried, and which
steps are in flight."""

from __future__ import annotations

import hashlib
from typing import Any

from streams.composite import layout, plan_step_of, qualify, split
from streams.contracts import StepTask, TaskUpdate, task_id_for
from streams.executors.masking import mask_secrets, mask_url
from streams.plan import PlanStep, RetryPolicy, canonical_type
from streams.secrets import references, shown
from streams.state import ACTIVE_STEP_STATUSES, ExecutionState, step_statuses
from streams.templates import ExpressionError, context, evaluate, render

STOPPED = "Stopped"  # error_type of an attempt abandoned by stop or the execution timeout
INLINE_TYPES = frozenset({"start", "end", "condition", "transform"})
WAITING_TYPES = frozenset({"external"})
# Run by the machine itself, never handed to a step executor:
MACHINE_TYPES = INLINE_TYPES | WAITING_TYPES | {"delay", "wait_input", "parallel", "loop",
                                                "sub_execution"}  # fmt: skip


def resolved_input(st: ExecutionState, ps: PlanStep, sid: str) -> dict[str, Any]:
    """A step's config with its templates resolved, secrets masked (what debug shows)."""
    try:
        return masked_input(render(dict(ps.config), template_context(st, sid)))
    except ExpressionError as exc:
        return {"error": str(exc)}


def inline_output(st: ExecutionState, ps: PlanStep, sid: str, kind: str) -> dict[str, Any]:
    if kind == "condition":
        return {"result": evaluate(str(ps.config["expression"]), template_context(st, sid))}
    if kind == "transform":
        mapped = render(dict(ps.config.get("mapping") or {}), template_context(st, sid))
        return mapped if isinstance(mapped, dict) else {"value": mapped}
    return {}


def template_context(st: ExecutionState, sid: str | None = None) -> dict[str, Any]:
    """What templates see at step ``sid``: inside a loop's iteration, the body steps of
    that iteration by their plain ids and ``loop.index`` / ``loop.item``."""
    outputs = {k: s.output for k, s in st.steps.items() if s.output is not None}
    base, i = split(sid) if sid is not None else ("", None)
    owner = layout(st.plan).owner.get(base) if st.plan is not None and i is not None else None
    if owner is None or i is None:
        return context(st.inputs, outputs, st.execution_id)
    return loop_context(st, owner, i, outputs)


def loop_context(
    st: ExecutionState, loop_id: str, i: int, outputs: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The template names of iteration ``i`` of loop ``loop_id``."""
    assert st.plan is not None
    if outputs is None:
        outputs = {k: s.output for k, s in st.steps.items() if s.output is not None}
    for m in layout(st.plan).members.get(loop_id, ()):
        outputs.pop(m, None)
        if qualify(m, i) in outputs:
            outputs[m] = outputs[qualify(m, i)]
    loop_step = st.steps.get(loop_id)
    items = loop_step.items if loop_step is not None else None
    item = items[i] if items is not None and i < len(items) else None
    return context(st.inputs, outputs, st.execution_id, {"index": i, "item": item})


def task_for(st: ExecutionState, ps: PlanStep, sid: str, attempt: int, now: int) -> StepTask:
    """The task for one attempt of step ``sid`` (its config rendered against the state)."""
    config = render(dict(ps.config), template_context(st, sid))
    return StepTask(
        task_id=task_id_for(st.execution_id, sid, attempt), execution_id=st.execution_id,
        tenant=st.tenant, step_id=sid, attempt=attempt, type=canonical_type(ps.type),
        system=ps.system, module=ps.module, config=config, timeout=ps.timeout,
        dispatched_at=now, endpoint=ps.endpoint, secret_refs=references(ps.config),
    )  # fmt: skip


def masked_input(config: dict[str, Any]) -> dict[str, Any]:
    """A task's config as the log shows it: secret headers, keys and URL parts masked,
    secret references as the plan wrote them."""
    masked: dict[str, Any] = shown(mask_secrets(config))
    if isinstance(masked.get("url"), str):
        masked["url"] = mask_url(masked["url"])
    return masked


def will_retry(policy: RetryPolicy | None, u: TaskUpdate) -> bool:
    if policy is None or not u.retryable or u.attempt > policy.max_retries:
        return False
    return not policy.retryable_errors or (u.error_type or "") in policy.retryable_errors


def backoff_ms(policy: RetryPolicy, execution_id: str, step_id: str, attempt: int) -> int:
    """Delay before attempt ``attempt + 1``: exponential (or fixed/linear) from
    ``initial_delay`` to ``max_delay``, with jitter derived from the ids (never random)."""
    if policy.backoff_strategy == "fixed":
        base = policy.initial_delay
    elif policy.backoff_strategy == "linear":
        base = policy.initial_delay * attempt
    else:
        base = policy.initial_delay * 2 ** (attempt - 1)
    digest = hashlib.blake2b(f"{execution_id}/{step_id}/{attempt}".encode(), digest_size=8)
    jitter = 0.8 + 0.4 * int.from_bytes(digest.digest(), "big") / 2**64
    return int(min(base * jitter, policy.max_delay) * 1000)


def active_steps(st: ExecutionState) -> list[str]:
    return [sid for sid, s in step_statuses(st).items() if s in ACTIVE_STEP_STATUSES]


def in_flight_tasks(st: ExecutionState, now: int) -> list[StepTask]:
    """Tasks dispatched and not finished (sent again after a restore: same task ids)."""
    if st.finished or st.plan is None or st.mode != "orchestrated":
        return []
    statuses = step_statuses(st)
    out = []
    for sid, step in st.steps.items():
        ps = plan_step_of(st.plan, sid)
        if ps is None or canonical_type(ps.type) in MACHINE_TYPES:
            continue
        if statuses.get(sid) in ("scheduled", "running"):
            try:
                out.append(task_for(st, ps, sid, step.scheduled, now))
            except ExpressionError:
                continue
    return out
