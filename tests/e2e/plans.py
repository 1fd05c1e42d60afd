"""Helpers for end-to-end tests of orchestrated executions: start a plan, read it back."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.e2e.conftest import wait_for


def new_eid(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def start(api: httpx.Client, eid: str, steps: list[dict[str, Any]], **extra: Any) -> None:
    body = {"execution_id": eid, "plan": {"id": "p_e2e", "steps": steps}, **extra}
    r = api.post("/api/v1/executions", json=body)
    assert r.status_code == 202, r.text


def detail(api: httpx.Client, eid: str) -> dict[str, Any]:
    return api.get(f"/api/v1/executions/{eid}").json()["data"]


def steps_of(d: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The detail's steps by id (none while the execution is not projected yet)."""
    return {s["step_id"]: s for s in d.get("steps", [])}


def finished(api: httpx.Client, eid: str, timeout: float = 60) -> dict[str, Any]:
    return wait_for(lambda: (d := detail(api, eid)).get("status") in
                    ("succeeded", "failed", "stopped") and d, timeout=timeout)  # fmt: skip


def reaches(api: httpx.Client, eid: str, status: str, timeout: float = 60) -> dict[str, Any]:
    return wait_for(lambda: (d := detail(api, eid)).get("status") == status and d,
                    timeout=timeout)  # fmt: skip
