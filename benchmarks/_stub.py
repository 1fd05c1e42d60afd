"""A minimal HTTP service for benchmarks: uvicorn (httptools, uvloop) in a subprocess,
answering every request with a small JSON body and counting the calls (`GET /count`)."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from benchmarks._harness import free_port

STUB = r"""
import sys, uvicorn
calls = 0
async def app(scope, receive, send):
    global calls
    while (await receive()).get("more_body"):
        pass
    calls += scope["path"] != "/count"
    body = str(calls).encode() if scope["path"] == "/count" else b'{"ok": true, "count": 3}'
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=False, lifespan="off",
            log_level="warning", http="httptools", loop="uvloop")
"""


def start_stub() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", STUB, str(port)])
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/count", timeout=1)
            return proc, f"http://127.0.0.1:{port}"
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the stub service did not start")


