"""A workflow definition (seed 003's nodes + connections) as a plan: pure and deterministic.

- A node becomes one step. Its step id is the node's own id when that is a string usable
  in templates (``fetch``), else its name when that is (``login``), else ``node_<id>``.
- Node types are case-insensitive (``API_CALL`` → ``api_call``, ``api`` → ``api_call``).
- ``SEQUENCE`` A → B: B depends on A. ``CONDITIONAL_TRUE`` / ``_FALSE`` from a condition
  node: B joins its ``true_path`` / ``false_path`` and depends on it. ``PARALLEL`` from a
  parallel node: B is one of its ``branches``. ``LOOP`` from a loop node: B is in its
  ``body``. A ``CONDITIONAL`` (or any connection with a ``condition``) becomes a condition
  step between A and B, so B runs only when the condition holds.
- Seed 003's config words: a condition node's ``condition`` is its ``expression``;
  ``true_path`` / ``false_path`` / ``branches`` / ``body`` may name nodes by id or name
  (one name alone is a list of one); ``api_id`` names an API registry Runledger does not
  have, so such a node needs ``config.url``.

Problems name the node (``node_id``) and the step id it would have had.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from streams.plan import Plan, PlanStep, RetryPolicy, canonical_type

CONNECTION_TYPES = ("SEQUENCE", "CONDITIONAL", "CONDITIONAL_TRUE", "CONDITIONAL_FALSE",
                    "PARALLEL", "LOOP")  # fmt: skip
_TEMPLATE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PATHS = {"CONDITIONAL_TRUE": "true_path", "CONDITIONAL_FALSE": "false_path",
          "PARALLEL": "branches", "LOOP": "body"}  # fmt: skip
_OWNER_TYPE = {"true_path": "condition", "false_path": "condition", "branches": "parallel",
               "body": "loop"}  # fmt: skip
NodeId = int | str


class Node(BaseModel):
    """Seed 003's workflow node (``type``/``data`` as graph editors name them also work)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: NodeId | None = None  # given by the workflow when missing
    name: str | None = Field(default=None, max_length=255)
    node_type: str = Field(alias="type", min_length=1, max_length=100)
    config: dict[str, Any] = Field(default_factory=dict, alias="data")
    description: str | None = Field(default=None, max_length=10_000)
    position_x: float | None = None
    position_y: float | None = None
    position: dict[str, float] | None = None
    system: str | None = Field(default=None, max_length=200)
    module: str | None = Field(default=None, max_length=200)
    retry: RetryPolicy | None = None
    timeout: float | None = Field(default=None, gt=0)
    inputs_spec: dict[str, Any] = Field(default_factory=dict, alias="inputsSpec")


class Connection(BaseModel):
    """Seed 003's connection; an edge (``source``/``target``) is a SEQUENCE connection."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: NodeId | None = None
    from_node_id: NodeId = Field(alias="source")
    to_node_id: NodeId = Field(alias="target")
    connection_type: str = "SEQUENCE"
    condition: str | None = Field(default=None, max_length=10_000)
    config: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_type(self) -> Connection:
        kind = self.connection_type.strip().upper()
        if kind not in CONNECTION_TYPES:
            raise ValueError(f"connection_type {self.connection_type!r} is not one of "
                             + ", ".join(CONNECTION_TYPES))  # fmt: skip
        self.connection_type = kind
        return self


class Edge(Connection):
    """A graph editor's edge (seed 001): a SEQUENCE connection; its drawing keys are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Definition(BaseModel):
    """What a workflow runs: a plan's step list, or nodes + connections (or edges)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    steps: list[PlanStep] | None = None
    nodes: list[Node] = Field(default_factory=list, max_length=1000)
    connections: list[Connection] = Field(default_factory=list, max_length=5000)
    edges: list[Edge] = Field(default_factory=list, max_length=5000)

    @property
    def is_empty(self) -> bool:
        return not self.steps and not self.nodes


def _first(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"


def _key(node_id: NodeId | None) -> str:
    return str(node_id)


def step_ids(nodes: list[Node]) -> dict[str, str]:
    """Each node's step id, by node id (as text)."""
    names = [n.name for n in nodes]
    out: dict[str, str] = {}
    for n in nodes:
        key = _key(n.id if n.id is not None else "")
        if isinstance(n.id, str) and _TEMPLATE_NAME.match(n.id):
            sid = n.id
        elif n.name and _TEMPLATE_NAME.match(n.name) and names.count(n.name) == 1:
            sid = n.name
        else:
            sid = f"node_{key}"
        out[key] = sid
    taken: set[str] = set()
    for key, sid in out.items():  # a name that equals another node's id
        out[key] = sid if sid not in taken else f"node_{key}"
        taken.add(out[key])
    return out


def to_plan(
    definition: Definition, *, plan_id: str | None = None, name: str | None = None
) -> tuple[Plan | None, list[dict[str, Any]]]:
    """The plan ``definition`` describes, or None and every problem found."""
    if definition.steps is not None and not definition.nodes:
        if not definition.steps:
            return None, [{"step_id": "", "problem": "the workflow has no steps"}]
        return Plan(id=plan_id, name=name, steps=tuple(definition.steps)), []
    if definition.steps:
        return None, [{"step_id": "", "problem": "give steps or nodes, not both"}]
    if not definition.nodes:
        return None, [{"step_id": "", "problem": "the workflow has no nodes"}]
    return _Builder(definition).build(plan_id, name)


class _Builder:
    def __init__(self, definition: Definition) -> None:
        self.nodes = definition.nodes
        self.connections: list[Connection] = [*definition.connections, *definition.edges]
        self.sid = step_ids(self.nodes)
        self.by_name = {n.name: self.sid[_key(n.id)] for n in self.nodes
                        if n.name and n.id is not None}  # fmt: skip
        self.kinds = {self.sid[_key(n.id)]: canonical_type(n.node_type) for n in self.nodes
                      if n.id is not None}  # fmt: skip  (build() names the nodes without one)
        self.deps: dict[str, list[str]] = {sid: [] for sid in self.sid.values()}
        self.configs: dict[str, dict[str, Any]] = {}
        self.extra: list[PlanStep] = []
        self.problems: list[dict[str, Any]] = []

    def problem(self, node_id: NodeId | None, step_id: str, text: str) -> None:
        self.problems.append({"node_id": node_id, "step_id": step_id, "problem": text})

    def ref(self, value: Any) -> str | None:
        """A node named by id, step id or name → its step id."""
        key = _key(value)
        if key in self.sid:
            return self.sid[key]
        if key in self.deps:
            return key
        return self.by_name.get(key)

    def build(self, plan_id: str | None, name: str | None) -> tuple[Plan | None, list[dict]]:
        for n in self.nodes:
            if n.id is None:
                self.problem(None, "", "a node needs an id")
        if self.problems:
            return None, self.problems
        for n in self.nodes:
            self.configs[self.sid[_key(n.id)]] = self.node_config(n)
        try:
            for c in self.connections:
                self.connect(c)
        except ValidationError as exc:  # e.g. a condition step's id past the length limit
            self.problem(None, "", f"a connection cannot become a step: {_first(exc)}")
        steps = []
        for n in self.nodes:
            try:
                steps.append(self.step(n))
            except ValidationError as exc:
                self.problem(n.id, self.sid[_key(n.id)], f"not a valid step: {_first(exc)}")
        if self.problems:
            return None, self.problems
        try:
            return Plan(id=plan_id, name=name, steps=tuple(steps + self.extra)), []
        except ValidationError as exc:
            return None, [{"node_id": None, "step_id": "", "problem": _first(exc)}]

    def node_config(self, n: Node) -> dict[str, Any]:
        sid, kind = self.sid[_key(n.id)], self.kinds[self.sid[_key(n.id)]]
        config = dict(n.config)
        if kind == "condition" and "expression" not in config and "condition" in config:
            config["expression"] = config.pop("condition")
        if kind == "api_call" and "api_id" in config:
            if not config.get("url"):
                self.problem(n.id, sid, "config.api_id names an API registry Runledger does "
                             "not have: give config.url (and method, headers, body)")
            config.pop("api_id")
        for key, owner in _OWNER_TYPE.items():
            if key not in config or kind != owner:
                continue
            refs = config[key] if isinstance(config[key], list) else [config[key]]
            mapped = []
            for r in refs:
                target = self.ref(r)
                if target is None:
                    self.problem(n.id, sid, f"config.{key} names no node: {r!r}")
                else:
                    mapped.append(target)
            config[key] = mapped
        return config

    def connect(self, c: Connection) -> None:
        src, dst = self.ref(c.from_node_id), self.ref(c.to_node_id)
        for end, found in ((c.from_node_id, src), (c.to_node_id, dst)):
            if found is None:
                self.problem(c.id, "", f"connection {c.from_node_id!r} -> {c.to_node_id!r}: "
                             f"no node {end!r}")  # fmt: skip
        if src is None or dst is None:
            return
        kind = c.connection_type
        if kind == "CONDITIONAL" or (kind == "SEQUENCE" and c.condition):
            if not c.condition:
                self.problem(c.id, src, f"the CONDITIONAL connection {src} -> {dst} needs a "
                             "condition")  # fmt: skip
                return
            gate = f"{src}_to_{dst}_if"
            self.extra.append(PlanStep(id=gate, type="condition", depends_on=(src,), config={
                "expression": c.condition, "true_path": [dst], "false_path": []}))
            self._add(self.deps[dst], gate)
            return
        if kind == "SEQUENCE":
            self._add(self.deps[dst], src)
            return
        key = _PATHS[kind]
        if self.kinds[src] != _OWNER_TYPE[key]:
            self.problem(c.id, src, f"a {kind} connection starts at a {_OWNER_TYPE[key]} node; "
                         f"{src} is a {self.kinds[src]}")  # fmt: skip
            return
        self._add(self.configs[src].setdefault(key, []), dst)
        if key in ("true_path", "false_path"):
            self._add(self.deps[dst], src)

    @staticmethod
    def _add(items: list[str], item: str) -> None:
        if item not in items:
            items.append(item)

    def step(self, n: Node) -> PlanStep:
        sid = self.sid[_key(n.id)]
        return PlanStep(id=sid, type=self.kinds[sid], name=n.name, system=n.system,
                        module=n.module, depends_on=tuple(self.deps[sid]),
                        inputs_spec=n.inputs_spec, config=self.configs[sid], retry=n.retry,
                        timeout=n.timeout)  # fmt: skip
