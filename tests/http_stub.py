"""A real HTTP server on 127.0.0.1 (a free port, its own thread) for the step executor and
the orchestrated end-to-end tests, recording every call.

Routes (the rest of the path only tells calls apart):
``/json`` 200 with a JSON body that echoes the request; ``/text`` 200 text/plain;
``/status/<code>`` that status with a long text body; ``/slow?s=N`` 200 after N s;
``/drip?s=N`` headers at once, then one body byte every 0.1 s for N s;
``/hang-once/…`` the first call sleeps 30 s, later ones answer 200 at once;
``/flaky/…`` 503 for the first two calls of that path, then as ``/json``;
``/hold/…?s=N`` 200 after N s, counting the calls in flight at once (``peak``).
Every request is recorded (method, path, headers, body).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

LONG_BODY = "error detail " * 100  # 1,300 chars: the executor keeps at most 300


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Stub:
    base_url: str = ""
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0  # /hold calls being answered now
    peak: int = 0  # the most /hold calls in flight at once

    def calls(self, path: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.path == path]

    def count(self, path: str) -> int:
        return len(self.calls(path))

    def keys(self, path: str) -> list[str | None]:
        """The Idempotency-Key header of each call of ``path``."""
        return [next((v for k, v in s.headers.items() if k.lower() == "idempotency-key"), None)
                for s in self.calls(path)]  # fmt: skip


def _handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Request-Id", "req-1")
            self.end_headers()
            try:
                self.wfile.write(body)
            except OSError:  # the client gave up first (a timeout under test)
                pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            with stub.lock:
                earlier = sum(1 for s in stub.seen if s.path == url.path)
                stub.seen.append(Seen(self.command, url.path, query, dict(self.headers), body))
            first = earlier == 0
            parts = url.path.strip("/").split("/")
            if parts[0] == "flaky" and earlier < 2:
                self._send(503, b'{"error": "busy"}')
            elif parts[0] in ("json", "flaky"):
                echo: dict[str, Any] = {
                    "id": "A1", "count": 3, "items": [{"id": "a"}, {"id": "b"}],
                    "method": self.command,
                    "query": query, "body": body.decode() or None,
                    "idempotency_key": self.headers.get("Idempotency-Key"),
                }  # fmt: skip
                self._send(200, json.dumps(echo).encode())
            elif parts[0] == "text":
                self._send(200, b"plain words", "text/plain")
            elif parts[0] == "status":
                self._send(int(parts[1]), LONG_BODY.encode(), "text/plain")
            elif parts[0] == "slow":
                time.sleep(float(query.get("s", ["5"])[0]))
                self._send(200, b'{"slow": true}')
            elif parts[0] == "hold":
                self._hold(float(query.get("s", ["0.2"])[0]))
            elif parts[0] == "drip":
                self._drip(float(query.get("s", ["3"])[0]))
            elif parts[0] == "hang-once":
                if first:
                    time.sleep(30)
                self._send(200, b'{"ok": true}')
            else:
                self._send(404, b"no such route", "text/plain")

        def _hold(self, seconds: float) -> None:
            with stub.lock:
                stub.in_flight += 1
                stub.peak = max(stub.peak, stub.in_flight)
            try:
                time.sleep(seconds)
            finally:
                with stub.lock:
                    stub.in_flight -= 1
            self._send(200, b'{"held": true}')

        def _drip(self, seconds: float) -> None:
            n = int(seconds / 0.1)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            try:
                for _ in range(n):
                    self.wfile.write(b".")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    return Handler


@contextmanager
def serve() -> Iterator[Stub]:
    stub = Stub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    server.daemon_threads = True
    stub.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
