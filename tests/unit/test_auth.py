"""API keys (pure parts): which role a request needs, keys kept as hashes, tenants in
bodies put in or refused."""

from __future__ import annotations

import pytest

from api.auth import KeyRing, digest, owned, required_role
from api.envelope import ApiError


@pytest.mark.parametrize(("method", "path", "role"), [
    ("GET", "/api/v1/executions", "viewer"),
    ("POST", "/api/v1/plans/validate", "viewer"),
    ("POST", "/api/orchestration/plan/generate", "viewer"),
    ("POST", "/api/v1/tracking/export", "viewer"),
    ("GET", "/api/v1/step-types", "viewer"),
    ("POST", "/api/v1/executions", "operator"),
    ("POST", "/api/v1/events", "operator"),
    ("POST", "/api/v1/executions/e1/stop", "operator"),
    ("POST", "/api/v1/execute/e1/pause", "operator"),
    ("POST", "/api/v1/workflows/w1/execute", "operator"),
    ("POST", "/api/v1/executions/bulk", "operator"),
    ("POST", "/api/v1/workflows", "admin"),
    ("PUT", "/api/v1/workflows/w1", "admin"),
    ("POST", "/api/v1/workflows/w1/nodes", "admin"),
    ("POST", "/api/v1/workflows/import", "admin"),
    ("DELETE", "/api/v1/workflows/w1", "admin"),
    ("POST", "/api/v1/step-types", "admin"),
    ("PUT", "/api/v1/admin/limits", "admin"),
    ("GET", "/api/v1/admin/limits", "admin"),
    ("POST", "/api/v1/dead-letters/d1/redrive", "admin"),
    ("GET", "/api/v1/dead-letters", "admin"),  # any tenant's raw messages
    ("GET", "/metrics", "admin"),
])  # fmt: skip
def test_the_role_each_request_needs(method: str, path: str, role: str):
    assert required_role(method, path) == role


def test_keys_are_kept_as_hashes_and_name_their_principal():
    ring = KeyRing({"plain-key": {"tenant": "acme", "role": "operator", "name": "bot"},
                    f"sha256:{digest('other')}": {"tenant": "beta"}})
    assert "plain-key" not in repr(ring.by_hash) and not ring.open
    bot = ring.find("plain-key")
    assert bot is not None and (bot.name, bot.tenant, bot.role) == ("bot", "acme", "operator")
    other = ring.find("other")
    assert other is not None and (other.tenant, other.role) == ("beta", "viewer")
    assert other.name.startswith("key:") and ring.find("nope") is None and ring.find(None) is None
    assert bot.may("viewer") and bot.may("operator") and not bot.may("admin")
    assert KeyRing({}).open


def test_a_bodys_tenant_is_put_in_or_refused():
    assert owned({"plan": {}}, "acme", ("",)) == {"plan": {}, "tenant": "acme"}
    batch = {"events": [{"execution_id": "a"}, {"execution_id": "b", "tenant": "acme"}]}
    assert [e["tenant"] for e in owned(batch, "acme", ("events[]",))["events"]] == ["acme"] * 2
    assert owned({"format": "csv"}, "acme", ("filters",)) == {"format": "csv",
                                                              "filters": {"tenant": "acme"}}
    for body, places in (({"tenant": "beta"}, ("",)), ({"events": [{"tenant": "beta"}]},
                         ("events[]",)), ({"filters": {"tenant": "beta"}}, ("filters",))):
        with pytest.raises(ApiError) as exc:
            owned(body, "acme", places)
        assert exc.value.status == 403
    assert owned(["not", "a", "dict"], "acme", ("", "events[]")) == ["not", "a", "dict"]
