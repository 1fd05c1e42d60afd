"""API keys: who may do what, and in which tenant (DESIGN.md's envelope: 401, 403).

``RUNLEDGER_API_KEYS`` (a JSON object) or ``RUNLEDGER_API_KEYS_FILE`` (the same in a
file) maps each key to ``{"tenant", "role", "name"}``; a key may be given as
``sha256:<hex>`` so the plain key is written nowhere. Only hashes are kept in memory.
Without keys the API is open (a laptop): the start-up log and ``/ready`` say so.

With keys, every route but ``/health`` and ``/ready`` needs ``Authorization: Bearer
<key>`` (``X-Api-Key`` too; ``?token=`` on the WebSocket). Roles: ``viewer`` reads (and
checks plans, exports), ``operator`` also starts, reports and steers, ``admin`` also
changes workflows, step types, limits, reads and redrives dead letters and reads
``/metrics``.
A key sees its own tenant only: a ``tenant`` in the query or the body that is another one
is a 403, and where none is given the key's tenant is put in (so every route that reads
``tenant`` gets it). The key's name is the actor the journal records.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

import orjson
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.envelope import ApiError, error_response

log = logging.getLogger("runledger.api")
Role = Literal["viewer", "operator", "admin"]
_RANK = {"viewer": 0, "operator": 1, "admin": 2}
OPEN_PATHS = frozenset({"/health", "/ready"})
# The page and its static files hold no data: it asks for a key when the API answers 401.
_OPEN_PAGE = re.compile(r"^/(ui(/.*)?)?$")
# POSTs that only read or check: a viewer may send them.
_READING_POSTS = re.compile(r"/(plans/validate|plans/generate|executions/validate-inputs|"
                            r"tracking/export|plan/validate|plan/generate|"
                            r"execute/validate-inputs)$")  # fmt: skip
# Dead letters are any tenant's raw messages (their table has no tenant): admin only.
_ADMIN = re.compile(r"^/metrics$|^/api/v1/admin/|^/api/v1/purge|^/api/v1/dead-letters"
                    r"|^/api/v1/step-types")  # fmt: skip
_WORKFLOW_CHANGE = re.compile(r"^/api/v1/workflows(/[^/]+(/nodes|/connections)?|/import)?$")
current_actor: contextvars.ContextVar[str | None] = contextvars.ContextVar("actor", default=None)


class KeySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str = Field(default="default", min_length=1, max_length=100)
    role: Role = "viewer"
    name: str | None = Field(default=None, max_length=100)


@dataclass(frozen=True)
class Principal:
    name: str
    tenant: str
    role: Role

    def may(self, role: Role) -> bool:
        return _RANK[self.role] >= _RANK[role]


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    """Key hashes → principals. Empty: open mode."""

    def __init__(self, keys: Mapping[str, Any] | None = None) -> None:
        self.by_hash: dict[str, Principal] = {}
        for key, raw in (keys or {}).items():
            spec = KeySpec.model_validate(raw)
            hashed = key.removeprefix("sha256:").lower() if key.startswith("sha256:") else (
                digest(key))
            name = spec.name or f"key:{hashed[:8]}"
            self.by_hash[hashed] = Principal(name, spec.tenant, spec.role)

    @classmethod
    def load(cls, keys: Mapping[str, Any], keys_file: Path | None) -> KeyRing:
        """The keys of the settings and of the keys file (the settings' win)."""
        found: dict[str, Any] = {}
        if keys_file is not None:
            found.update(orjson.loads(keys_file.read_bytes()))
        found.update(keys)
        return cls(found)

    @property
    def open(self) -> bool:
        return not self.by_hash

    def find(self, key: str | None) -> Principal | None:
        return self.by_hash.get(digest(key)) if key else None


def required_role(method: str, path: str) -> Role:
    """The least role a request needs."""
    if _ADMIN.search(path):
        return "viewer" if method == "GET" and path.startswith("/api/v1/step-types") else "admin"
    if method in ("GET", "HEAD", "OPTIONS") or _READING_POSTS.search(path):
        return "viewer"
    if _WORKFLOW_CHANGE.match(path) and method in ("POST", "PUT", "DELETE"):
        return "admin"
    return "operator"


def _key_of(scope: Scope) -> str | None:
    headers = Headers(scope=scope)
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    if headers.get("x-api-key"):
        return headers["x-api-key"]
    if scope["type"] == "websocket":
        return dict(parse_qsl(scope.get("query_string", b"").decode())).get("token")
    return None


class TenantBodies:
    """Which request bodies name a tenant, read once from the OpenAPI schema: where in the
    body (``""`` the body itself, ``"events[]"`` each item of ``events``, ``"filters"`` an
    object property), so a key's tenant can be checked and put in."""

    def __init__(self, schema: dict[str, Any]) -> None:
        comps = schema.get("components", {}).get("schemas", {})

        def props(ref: dict[str, Any]) -> dict[str, Any]:
            for alt in ref.get("anyOf", ref.get("oneOf", [])):  # an optional body
                if "$ref" in alt:
                    ref = alt
            name = ref.get("$ref", "").rsplit("/", 1)[-1]
            return comps.get(name, ref).get("properties", {})

        self.rules: list[tuple[str, re.Pattern[str], tuple[str, ...]]] = []
        for path, ops in schema.get("paths", {}).items():
            for method, op in ops.items():
                content = op.get("requestBody", {}).get("content", {}).get("application/json")
                if not content:
                    continue
                top = props(content.get("schema", {}))
                places = [""] if "tenant" in top else []
                for name, prop in top.items():
                    if "tenant" in props(prop.get("items", {}) if name == "events" else prop):
                        places.append(f"{name}[]" if name == "events" else name)
                if places:
                    pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")
                    self.rules.append((method.upper(), pattern, tuple(places)))

    def lookup(self, method: str, path: str) -> tuple[str, ...] | None:
        for m, pattern, places in self.rules:
            if m == method and pattern.match(path):
                return places
        return None


def owned(body: Any, tenant: str, places: tuple[str, ...]) -> Any:
    """``body`` with ``tenant`` put in at ``places`` where none is given; an ApiError 403
    where another tenant is named."""
    if not isinstance(body, dict):
        return body
    items: list[Any] = []
    for place in places:
        if place == "":
            items.append(body)
        elif place.endswith("[]"):
            listed = body.get(place[:-2])
            items += [e for e in listed if isinstance(e, dict)] if isinstance(listed, list) else []
        else:
            items.append(body.setdefault(place, {}))
    for item in items:
        if not isinstance(item, dict):
            continue
        given = item.get("tenant")
        if given is not None and given != tenant:
            raise _other_tenant(tenant)
        item["tenant"] = tenant
    return body


def _other_tenant(tenant: str) -> ApiError:
    return ApiError(403, "other_tenant", f"this API key works in tenant {tenant!r} only",
                    category="permission")  # fmt: skip


class Auth:
    """ASGI middleware: the key, its role, its tenant (see the module's docstring)."""

    def __init__(self, app: ASGIApp, keys: KeyRing) -> None:
        self.app, self.keys = app, keys
        self._bodies: TenantBodies | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.keys.open \
                or scope["path"] in OPEN_PATHS or _OPEN_PAGE.match(scope["path"]):  # fmt: skip
            await self.app(scope, receive, send)
            return
        principal = self.keys.find(_key_of(scope))
        method = scope.get("method", "GET")
        try:
            if principal is None:
                raise ApiError(401, "unauthenticated", "an API key is needed: Authorization: "
                               "Bearer <key>", category="permission")  # fmt: skip
            need = required_role(method, scope["path"])
            if not principal.may(need):
                raise ApiError(403, "forbidden", f"this needs the {need} role; the key has "
                               f"{principal.role}", category="permission")  # fmt: skip
            scope = _with_query_tenant(scope, principal.tenant)
            if scope["type"] == "http" and method in ("POST", "PUT", "PATCH"):
                receive = await self._owned_body(scope, receive, principal.tenant)
        except ApiError as exc:
            await _refuse(scope, receive, send, exc)
            return
        scope.setdefault("state", {})["principal"] = principal
        token = current_actor.set(principal.name)
        try:
            await self.app(scope, receive, send)
        finally:
            current_actor.reset(token)

    async def _owned_body(self, scope: Scope, receive: Receive, tenant: str) -> Receive:
        if self._bodies is None:
            self._bodies = TenantBodies(scope["app"].openapi())
        rule = self._bodies.lookup(scope["method"], scope["path"])
        if rule is None:
            return receive
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return _replay([message], receive)
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        raw = b"".join(chunks)
        if not raw.strip() and "" in rule:  # an optional body left out: the key's tenant
            body: Any = {}
            _set_header(scope, b"content-type", b"application/json")
        else:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return _replay([{"type": "http.request", "body": raw}], receive)  # a 400
        new = orjson.dumps(owned(body, tenant, rule))
        _set_header(scope, b"content-length", str(len(new)).encode())
        return _replay([{"type": "http.request", "body": new}], receive)


def _with_query_tenant(scope: Scope, tenant: str) -> Scope:
    pairs = parse_qsl(scope.get("query_string", b"").decode(), keep_blank_values=True)
    named = [v for k, v in pairs if k == "tenant"]
    if any(v != tenant for v in named):
        raise _other_tenant(tenant)
    if named:
        return scope
    pairs.append(("tenant", tenant))
    return {**scope, "query_string": urlencode(pairs).encode()}


def _set_header(scope: Scope, name: bytes, value: bytes) -> None:
    scope["headers"] = [(k, v) for k, v in scope.get("headers", []) if k.lower() != name]
    scope["headers"].append((name, value))


def _replay(messages: list[Message], then: Receive) -> Receive:
    """``messages`` first, then the client's own (its disconnect, for a streamed answer)."""
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        return await then()

    return receive


async def _refuse(scope: Scope, receive: Receive, send: Send, exc: ApiError) -> None:
    if scope["type"] == "websocket":  # closed before it is accepted: the handshake gets 403
        await send({"type": "websocket.close", "code": 1008, "reason": exc.message[:120]})
        return
    await error_response(exc)(scope, receive, send)
