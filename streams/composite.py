"""Composite steps in a plan (pure): which steps a `parallel` or a `loop` owns, and the
step ids of a loop's iterations.

A step listed in a parallel's ``branches`` or a loop's ``body`` is a *member*: it is
started by its owner, never by the plan's dependencies alone (its ``dependsOn`` may only
name other members of the same owner). A parallel's members are ordinary steps with
their own ids. A loop's members are templates: iteration ``i`` of body step ``call``
runs as the step ``call[i]``, and inside it ``{{ steps.other.output }}`` means
``other[i]`` of the same iteration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from streams.plan import Plan, PlanStep, canonical_type

COMPOSITE_TYPES = frozenset({"parallel", "loop"})
_MEMBER_LISTS = {"parallel": "branches", "loop": "body"}
_QUALIFIED = re.compile(r"^(.*)\[(\d+)\]$")


@dataclass(frozen=True)
class Layout:
    """Who owns whom in one plan."""

    owner: dict[str, str] = field(default_factory=dict)  # member id → owner id
    members: dict[str, tuple[str, ...]] = field(default_factory=dict)  # owner id → members
    kinds: dict[str, str] = field(default_factory=dict)  # step id → canonical type

    def is_loop_member(self, step_id: str) -> bool:
        owner = self.owner.get(step_id)
        return owner is not None and self.kinds.get(owner) == "loop"

    def top_level(self, plan: Plan) -> list[PlanStep]:
        return [ps for ps in plan.steps if ps.id not in self.owner]


_layouts: dict[int, tuple[Plan, Layout]] = {}


def layout(plan: Plan) -> Layout:
    """The plan's ownership (cached per plan object: plans are immutable)."""
    hit = _layouts.get(id(plan))
    if hit is not None and hit[0] is plan:
        return hit[1]
    kinds = {ps.id: canonical_type(ps.type) for ps in plan.steps}
    owner: dict[str, str] = {}
    members: dict[str, tuple[str, ...]] = {}
    for ps in plan.steps:
        key = _MEMBER_LISTS.get(kinds[ps.id])
        if key is None:
            continue
        ids = tuple(str(m) for m in ps.config.get(key) or () if m in kinds)
        members[ps.id] = ids
        for m in ids:
            owner.setdefault(m, ps.id)
    out = Layout(owner=owner, members=members, kinds=kinds)
    if len(_layouts) > 4096:
        _layouts.clear()
    _layouts[id(plan)] = (plan, out)
    return out


def qualify(step_id: str, iteration: int) -> str:
    return f"{step_id}[{iteration}]"


def split(step_id: str) -> tuple[str, int | None]:
    """``call[3]`` → ``("call", 3)``; a plain id → ``(id, None)``."""
    m = _QUALIFIED.match(step_id)
    return (m.group(1), int(m.group(2))) if m else (step_id, None)


def sibling(step_id: str, other: str) -> str:
    """``other`` in the same loop iteration as ``step_id`` (or plain, outside loops)."""
    _, i = split(step_id)
    return other if i is None else qualify(other, i)


def plan_step_of(plan: Plan, step_id: str) -> PlanStep | None:
    """The plan step behind a step id (an iteration's id names its body step)."""
    ps = plan.step(step_id)
    if ps is not None:
        return ps
    base, i = split(step_id)
    return plan.step(base) if i is not None else None


def composite_problems(plan: Plan) -> list[dict[str, str]]:
    """What a plan's parallels and loops may not do, each naming its step."""
    lay = layout(plan)
    problems: list[dict[str, str]] = []
    seen: dict[str, str] = {}
    for owner, members in lay.members.items():
        for m in members:
            if m == owner:
                problems.append({"step_id": owner, "problem": "lists itself as a member"})
            elif seen.setdefault(m, owner) != owner:
                problems.append({"step_id": m, "problem": f"is a member of both "
                                 f"{seen[m]!r} and {owner!r}"})  # fmt: skip
            elif lay.kinds.get(m) in COMPOSITE_TYPES:
                problems.append({"step_id": m, "problem": f"a {lay.kinds[m]} cannot run inside "
                                 f"{owner!r}; nest it through a sub_execution"})  # fmt: skip
    for ps in plan.steps:
        if _QUALIFIED.match(ps.id):
            problems.append({"step_id": ps.id, "problem": "a step id may not end in [n] "
                             "(that names a loop iteration)"})  # fmt: skip
        inside = lay.owner.get(ps.id)
        for dep in ps.depends_on:
            if dep not in lay.kinds:
                continue  # reported by the structural checks
            if inside is not None and lay.owner.get(dep) != inside:
                problems.append({"step_id": ps.id, "problem": f"dependsOn {dep!r}: a step inside "
                                 f"{inside!r} is started by it and may depend only on other "
                                 f"steps inside {inside!r}"})  # fmt: skip
            elif inside is None and dep in lay.owner:
                problems.append({"step_id": ps.id, "problem": f"dependsOn {dep!r}, which runs "
                                 f"inside {lay.owner[dep]!r}; depend on "
                                 f"{lay.owner[dep]!r}"})  # fmt: skip
        if lay.kinds[ps.id] == "loop" and (ps.config.get("items") is None) == (
                not ps.config.get("condition")):  # fmt: skip
            problems.append({"step_id": ps.id,
                             "problem": "a loop needs either items or a condition"})
    return problems
