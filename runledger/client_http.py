"""What the client commands (`status`, `start`, `tail`, `export`) share: the API's address
and key, exit codes scripts can rely on, and API errors turned into readable lines.

These commands never open the data dir: with chDB only the API process may (DESIGN.md),
so they ask the running API over HTTP and its WebSocket.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import typer
from pydantic import ValidationError

OK = 0
FAILED = 1  # not ready; the execution failed or was stopped
UNREACHABLE = 5  # no answer from the API (connection refused, timeout, dropped)
INVALID = 3  # the API refused the request as invalid (400/422), or a bad local file
API_ERROR = 4  # any other error answer: 401, 403, 404, 409, 429, 5xx
INTERRUPTED = 130  # Ctrl-C

EXIT_CODES_HELP = """Exit codes: 0 ok; 5 API unreachable; 3 request refused as invalid
(400/422) or unreadable file; 4 other API error (401/403/404/409/5xx);
130 Ctrl-C."""


class Unreachable(Exception):
    """No answer from the API."""


class Problem(Exception):
    """The API answered an error (its envelope's ``error`` when it sent one)."""

    def __init__(self, status: int, code: str, message: str, details: list[Any]) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details

    @classmethod
    def of(cls, answer: httpx.Response) -> Problem:
        try:
            error = answer.json().get("error") or {}
        except (ValueError, AttributeError):
            error = {}
        if not isinstance(error, dict) or not error:
            return cls(answer.status_code, "http_error", answer.text[:300].strip() or
                       answer.reason_phrase, [])  # fmt: skip
        details = error.get("details")
        listed = details if isinstance(details, list) else []
        return cls(answer.status_code, str(error.get("code", "error")),
                   str(error.get("message", "")), listed)  # fmt: skip

    @property
    def exit_code(self) -> int:
        return INVALID if self.status in (400, 422) else API_ERROR

    def lines(self) -> list[str]:
        out = [f"error: {self.status} {self.code}: {self.message}"]
        for d in self.details[:20]:
            if isinstance(d, dict):
                where = d.get("field") or d.get("step_id") or d.get("index") or ""
                what = d.get("message") or d.get("problem") or d.get("msg") or d
                out.append(f"  - {where}: {what}" if where != "" else f"  - {what}")
            else:
                out.append(f"  - {d}")
        if len(self.details) > 20:
            out.append(f"  … and {len(self.details) - 20} more")
        return out


def fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def load_settings(code: int):  # -> Settings (imported late: the CLI starts quicker)
    """The settings, or one line naming the bad RUNLEDGER_ variable and exit ``code``."""
    from runledger.settings import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise fail(f"invalid setting RUNLEDGER_{where.upper()}: {first.get('msg')}",
                   code) from None  # fmt: skip


def default_url() -> str:
    """RUNLEDGER_API_URL, else http://RUNLEDGER_HOST:RUNLEDGER_PORT (the settings')."""
    return str(load_settings(INVALID).api_base)


@dataclass
class Api:
    """The running API, as one client command sees it."""

    base_url: str
    api_key: str | None = None
    timeout: float = 30.0

    @property
    def headers(self) -> dict[str, str]:
        # api/auth.py: `Authorization: Bearer <key>` on HTTP and on the WebSocket
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    @property
    def ws_base(self) -> str:
        if self.base_url.startswith("https://"):
            return "wss://" + self.base_url.removeprefix("https://")
        return "ws://" + self.base_url.removeprefix("http://")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers=self.headers, timeout=self.timeout)

    def call(self, client: httpx.Client, method: str, path: str, *, ok: tuple[int, ...] = (),
             **kwargs: Any) -> httpx.Response:  # fmt: skip
        """The answer; a Problem for an error status not in ``ok``, Unreachable without one."""
        try:
            answer = client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise Unreachable(self.why(exc)) from None
        if answer.status_code >= 400 and answer.status_code not in ok:
            raise Problem.of(answer)
        return answer

    def data(self, client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
        """The envelope's ``data`` of a successful answer."""
        return self.call(client, method, path, **kwargs).json().get("data")

    def why(self, exc: Exception) -> str:
        if isinstance(exc, httpx.ConnectError):
            return f"cannot reach the API at {self.base_url} (is it running? `runledger run`)"
        if isinstance(exc, httpx.TimeoutException):
            return f"the API at {self.base_url} did not answer in time ({type(exc).__name__})"
        return f"lost the API at {self.base_url} ({exc!r})"


def api_of(url: str | None, api_key: str | None) -> Api:
    return Api((url or default_url()).rstrip("/"), api_key or None)


@contextmanager
def cli_errors() -> Iterator[None]:
    """Unreachable → one line and exit 5; a Problem → its lines and its exit code;
    Ctrl-C → exit 130. Never a stack trace for these."""
    try:
        yield
    except Unreachable as exc:
        raise fail(str(exc), UNREACHABLE) from None
    except Problem as exc:
        for line in exc.lines():
            typer.echo(line, err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(INTERRUPTED) from None
