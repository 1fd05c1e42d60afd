"""An executor follows the per-system caps in force: it asks the API
(`GET /api/v1/admin/limits`, where `PUT` changes them, journaled) every
``limits_poll_interval`` seconds. Until the API answers, and whenever it does not, the
caps it has stay: the settings' at first."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx
from pydantic import ValidationError

from runledger.settings import Settings
from streams.executors.system_limits import SystemCaps, SystemLimits

log = logging.getLogger(__name__)


async def follow_limits(settings: Settings, limits: SystemLimits, stop: asyncio.Event) -> None:
    url = f"{settings.api_base}/api/v1/admin/limits"
    current = SystemCaps.from_settings(settings)
    headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
    async with httpx.AsyncClient(timeout=5, headers=headers) as http:
        while not stop.is_set():
            try:
                r = await http.get(url)
                r.raise_for_status()
                caps = SystemCaps.model_validate(r.json()["data"]["executor_system_concurrency"])
            except (httpx.HTTPError, ValidationError, KeyError, TypeError, ValueError) as exc:
                log.debug("limits not read from %s: %r", url, exc)
            else:
                if caps != current:
                    limits.set_caps(caps.systems, caps.default)
                    log.info("per-system caps now %s (default %s)", caps.systems, caps.default)
                    current = caps
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.limits_poll_interval)
