"""`runledger export`: stream `POST /tracking/export` into a file with a progress bar."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.progress import (
    FileSizeColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from runledger.client_http import API_ERROR, OK, Api, Problem, Unreachable
from runledger.client_ops import err

_FILENAME = re.compile(r'filename="?([^";]+)"?')


def _target(answer: httpx.Response, output: Path | None) -> Path:
    if output is not None:
        return output
    found = _FILENAME.search(answer.headers.get("content-disposition", ""))
    return Path(Path(found.group(1)).name if found else "runledger-export")


def export(api: Api, body: dict[str, Any], output: Path | None) -> int:
    """0 when the whole file was written; the export's id is printed either way."""
    fmt = body["format"]
    with api.client() as client:
        try:
            with client.stream("POST", "/api/v1/tracking/export", json=body) as answer:
                if answer.status_code >= 400:
                    answer.read()
                    raise Problem.of(answer)
                export_id = answer.headers.get("x-export-id", "?")
                target = _target(answer, output)
                size, lines = _write(answer, target, fmt, export_id)
        except httpx.TransportError as exc:
            raise Unreachable(api.why(exc)) from None
        try:
            status = api.data(client, "GET", f"/api/v1/exports/{export_id}")
        except Problem:  # another API replica served it, or it left the registry
            status = {}
    rows = status.get("rows", max(lines - (fmt == "csv"), 0) if fmt != "json" else "?")
    if status.get("error"):
        err.print(f"error: export {export_id} failed: {status['error']}")
        return API_ERROR
    typer.echo(f"export {export_id}: {rows} rows, {size:,} bytes → {target}")
    return OK


def _write(answer: httpx.Response, target: Path, fmt: str, export_id: str) -> tuple[int, int]:
    """Bytes and newlines written; the file appears only once the download is complete."""
    part = target.with_name(target.name + ".part")
    size = lines = 0
    header = 1 if fmt == "csv" else 0
    bar = Progress(TextColumn(f"export {export_id}"), FileSizeColumn(), TransferSpeedColumn(),
                   TextColumn("{task.fields[rows]} rows"), TimeElapsedColumn(),
                   console=err)  # fmt: skip
    try:
        with bar, part.open("wb") as f:
            task = bar.add_task("", total=None, rows="?" if fmt == "json" else 0)
            for chunk in answer.iter_bytes():
                f.write(chunk)
                size += len(chunk)
                lines += chunk.count(b"\n")
                rows = "?" if fmt == "json" else max(lines - header, 0)
                bar.update(task, completed=size, rows=rows)
        part.replace(target)
    finally:
        part.unlink(missing_ok=True)
    return size, lines
