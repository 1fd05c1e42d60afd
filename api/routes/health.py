"""`/health`, `/ready`, `/metrics` at the root (outside the envelope)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.deps import Ctx
from api.envelope import JsonResponse
from api.readiness import readiness
from runledger.metrics import exposition

router = APIRouter(tags=["health"])


@router.get("/health")
async def health():
    """Alive (the process answers)."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(ctx: Ctx, request: Request):
    """200 once broker, workers and ClickHouse answer; 503 naming what is missing."""
    checks = await readiness(ctx)
    missing = [name for name, good in checks.items() if not good]
    body = {"ready": not missing, "checks": checks, "missing": missing,
            "auth": "open" if request.app.state.keys.open else "api_keys"}
    return JsonResponse(body, status_code=200 if not missing else 503)


@router.get("/metrics")
async def metrics():
    """Prometheus metrics (of every process `runledger run` started: runledger/metrics.py)."""
    body, content_type = exposition()
    return Response(body, media_type=content_type)
