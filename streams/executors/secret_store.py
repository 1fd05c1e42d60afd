"""Where a step executor finds secrets' values: ``RUNLEDGER_SECRET_<NAME>`` in its
environment, else ``RUNLEDGER_SECRETS_FILE`` (a JSON object of name → value, read again
when it changes). Nothing else of the environment is reachable from a plan."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)
ENV_PREFIX = "RUNLEDGER_SECRET_"


class SecretStore:
    def __init__(self, path: str | None = None) -> None:
        self.path = Path(path) if path else None
        self._stamp: float | None = None
        self._values: dict[str, str] = {}

    @classmethod
    def from_env(cls) -> SecretStore:
        return cls(os.environ.get("RUNLEDGER_SECRETS_FILE"))

    def get(self, name: str) -> str | None:
        value = os.environ.get(ENV_PREFIX + name)
        if value is not None:
            return value
        return self._file().get(name)

    def _file(self) -> dict[str, str]:
        if self.path is None:
            return {}
        try:
            stamp = self.path.stat().st_mtime
            if stamp != self._stamp:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self._values = {str(k): str(v) for k, v in data.items()}
                self._stamp = stamp
        except (OSError, ValueError, AttributeError) as exc:  # names the file, never values
            log.warning("secrets file %s cannot be read: %s", self.path, type(exc).__name__)
            self._values, self._stamp = {}, None
        return self._values
