"""What `runledger status`, `start` and `tail` do against the running API (the typer
commands are in client_cli.py). Each returns the exit code (client_http.py)."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

import typer
from rich.console import Console
from rich.table import Table

from runledger.client_http import (
    API_ERROR,
    FAILED,
    OK,
    UNREACHABLE,
    Api,
    Problem,
    Unreachable,
)
from streams.state import FINAL_STATUSES

POLL_S = 0.5
ANY_ERROR = tuple(range(400, 600))
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def _mark(good: object) -> str:
    return "[green]yes[/]" if good else "[red]no[/]"


def status_overview(api: Api, as_json: bool) -> int:
    """/health, /ready and the realtime figures: 0 ready, 1 not ready (5: unreachable)."""
    with api.client() as client:
        # any answer is one: not 200 means not ready (a proxy's 502 too)
        health = api.call(client, "GET", "/health", ok=ANY_ERROR)
        ready = api.call(client, "GET", "/ready", ok=ANY_ERROR)
        try:
            realtime: dict[str, Any] | str = api.data(client, "GET", "/api/v1/stats/realtime")
        except Problem as exc:  # e.g. a key without access, or ClickHouse down
            realtime = f"{exc.status} {exc.code}"
    try:
        body = ready.json()
    except ValueError:  # not the API's answer (a proxy's error page)
        body = None
    body = body if isinstance(body, dict) else {}
    is_ready = ready.status_code == 200 and bool(body.get("ready"))
    if as_json:
        typer.echo(json.dumps({"url": api.base_url, "health": health.status_code == 200,
                               **body, "realtime": realtime}))  # fmt: skip
        return OK if is_ready else FAILED
    table = Table(title=f"Runledger at {api.base_url}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("health", "[green]ok[/]" if health.status_code == 200 else
                  f"[red]{health.status_code}[/]")  # fmt: skip
    table.add_row("ready", _mark(is_ready))
    for name, good in (body.get("checks") or {}).items():
        table.add_row(f"  {name}", _mark(good))
    table.add_row("auth", str(body.get("auth", "?")))
    if isinstance(realtime, dict):
        by_status = realtime.get("active_by_status") or {}
        table.add_row("active executions", f"{realtime.get('active_executions', 0)} (" + ", ".join(
            f"{k} {v}" for k, v in by_status.items()) + ")")  # fmt: skip
        table.add_row("step events/s (1 min)", str(realtime.get("step_events_per_second")))
        rate = realtime.get("error_rate")
        table.add_row("step error rate (5 min)", "-" if rate is None else f"{rate:.1%}")
    else:
        table.add_row("realtime figures", f"unavailable ({realtime})")
    out.print(table)
    if not is_ready:
        missing = ", ".join(map(str, body.get("missing") or ()))
        err.print(f"not ready: {f'missing {missing}' if missing else f'HTTP {ready.status_code}'}")
    return OK if is_ready else FAILED


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _steps_table(detail: dict[str, Any]) -> Table:
    table = Table(title=f"steps of {detail.get('execution_id')}")
    for name in ("step", "status", "attempts", "duration ms", "error"):
        table.add_column(name)
    colours = {"succeeded": "green", "failed": "red", "stopped": "red", "running": "cyan"}
    for s in detail.get("steps") or []:
        status = str(s.get("status"))
        error = " ".join(str(x) for x in (s.get("error_type"), s.get("error")) if x)
        shown = f"[{colours.get(status, 'default')}]{status}[/]"
        table.add_row(str(s.get("step_id")), shown, str(s.get("attempts", "")),
                      _text(s.get("duration_ms")), error[:120])  # fmt: skip
    return table


def show_execution(detail: dict[str, Any]) -> None:
    fields = ("execution_id", "status", "mode", "workflow_id", "progress", "started_at",
              "finished_at", "duration_ms", "message", "current_steps", "blocked_steps",
              "stopped_at_steps", "parent_execution_id", "child_executions")  # fmt: skip
    table = Table(show_header=False, title=f"execution {detail.get('execution_id')}")
    table.add_column("what", style="bold")
    table.add_column("value")
    for name in fields:
        value = detail.get(name)
        if value not in (None, [], ""):
            table.add_row(name, ", ".join(map(str, value)) if isinstance(value, list) else
                          f"{value:.0%}" if name == "progress" else str(value))  # fmt: skip
    out.print(table)
    if detail.get("steps"):
        out.print(_steps_table(detail))


def execution(api: Api, execution_id: str, as_json: bool) -> int:
    """One execution's detail: 0 found (4 not found, 5 unreachable)."""
    with api.client() as client:
        detail = api.data(client, "GET", f"/api/v1/executions/{quote(execution_id, safe='')}")
    if as_json:
        typer.echo(json.dumps(detail))
    else:
        show_execution(detail)
    return OK


def final_code(status: object) -> int:
    return OK if status == "succeeded" else FAILED


def start(api: Api, body: dict[str, Any], wait: bool) -> int:
    """POST /executions; with ``wait``, follow it to its end (0 succeeded, 1 failed or
    stopped)."""
    with api.client() as client:
        started = api.data(client, "POST", "/api/v1/executions", json=body)
        eid = str(started["execution_id"])
        if not wait:
            typer.echo(eid)
            return OK
        err.print(f"started {eid}")
        detail = follow(api, client, eid)
    show_execution(detail)
    return final_code(detail.get("status"))


def follow(api: Api, client: Any, eid: str) -> dict[str, Any]:
    """Poll the detail with a progress bar (stderr) until the execution finishes."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    path = f"/api/v1/executions/{quote(eid, safe='')}"
    columns = (TextColumn("{task.fields[status]:<9}"), BarColumn(),
               TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
               TextColumn("{task.description}"))  # fmt: skip
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task("", total=100, status="pending")
        while True:
            detail: dict[str, Any] = api.data(client, "GET", path)
            status = detail.get("status")
            now = ", ".join(map(str, detail.get("current_steps") or []))
            bar.update(task, completed=100 * float(detail.get("progress") or 0), status=status,
                       description=now[:60])  # fmt: skip
            if status in FINAL_STATUSES:
                return detail
            time.sleep(POLL_S)


def event_line(ev: dict[str, Any]) -> str:
    step = ev.get("step_id") or "-"
    line = (f"{ev.get('seq', ''):>5}  {ev.get('timestamp', '')}  "
            f"{ev.get('event_type', ''):<21} {step:<16} {ev.get('message') or ''}")  # fmt: skip
    return line.rstrip()


def tail(api: Api, execution_id: str, after_seq: int, as_json: bool) -> int:
    """The WebSocket tail, one line per event, until the execution finishes (0 succeeded, 1
    failed or stopped); 4 for an unknown execution, 2 when the API goes away."""
    from websockets.exceptions import ConnectionClosedError, InvalidHandshake
    from websockets.sync.client import connect

    with api.client() as client:  # an unknown execution is a 404 here, not a silent socket
        api.call(client, "GET", f"/api/v1/executions/{quote(execution_id, safe='')}")
    url = (f"{api.ws_base}/ws/v1/executions/{quote(execution_id, safe='')}"
           f"?after_seq={after_seq}")  # fmt: skip
    try:
        with connect(url, additional_headers=api.headers, open_timeout=api.timeout) as ws:
            for raw in ws:  # ends when the server closes with 1000 after the last event
                frame = json.loads(raw)
                if frame.get("type") == "error":
                    err.print(f"error: {frame.get('code', '')} {frame.get('message')}")
                    return API_ERROR
                if frame.get("event_type") == "heartbeat" or "seq" not in frame:
                    continue
                typer.echo(json.dumps(frame) if as_json else event_line(frame))
                if frame["event_type"] == "execution_completed":
                    return final_code((frame.get("data") or {}).get("status", "succeeded"))
    except (OSError, InvalidHandshake, ConnectionClosedError) as exc:
        raise Unreachable(f"lost the tail at {api.ws_base} ({exc})") from None
    err.print("error: the API closed the tail before the execution finished")
    return UNREACHABLE
