"""The client commands of `runledger`: status, start, tail, export (over the running API's
HTTP and WebSocket, never the data dir) and bench. ``register`` adds them to the app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from runledger import client_http as http

Url = Annotated[str | None, typer.Option(
    "--url", help="The API's base URL (default: RUNLEDGER_API_URL, else "
    "http://RUNLEDGER_HOST:RUNLEDGER_PORT)", show_default=False)]  # fmt: skip
ApiKey = Annotated[str | None, typer.Option(
    "--api-key", envvar="RUNLEDGER_API_KEY", show_default=False,
    help="API key, sent as Authorization: Bearer <key> (when the API has keys).",
)]  # fmt: skip
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _pairs(items: list[str] | None, what: str, parse: bool = False) -> dict[str, Any]:
    """KEY=VALUE options as a dict; with ``parse`` a value that is JSON (42, true, [1])
    is taken as such, anything else as text."""
    found: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise http.fail(f"{what} {item!r}: expected KEY=VALUE", http.INVALID)
        if parse:
            try:
                found[key] = json.loads(value)
            except ValueError:
                found[key] = value
        else:
            found[key] = value
    return found


def _load(path: Path) -> Any:
    """A JSON or YAML document ("-": standard input); exit 3 when it cannot be read."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        raise http.fail(f"cannot read {path}: {exc.strerror or exc}", http.INVALID) from None
    if path.suffix.lower() not in (".yaml", ".yml"):
        try:
            return json.loads(text)
        except ValueError as exc:
            if path.suffix.lower() == ".json":
                raise http.fail(f"{path} is not JSON: {exc}", http.INVALID) from None
    import yaml  # PyYAML comes with uvicorn[standard]

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise http.fail(f"{path} is neither JSON nor YAML: {exc}", http.INVALID) from None


def status(
    execution_id: Annotated[str | None, typer.Argument(
        help="Show this execution and its steps instead.", show_default=False)] = None,
    url: Url = None, api_key: ApiKey = None, as_json: AsJson = False,
) -> None:  # fmt: skip
    """Is the running product ready? (GET /health, /ready, /api/v1/stats/realtime)

    With EXECUTION_ID: that execution's status, progress and steps.

    Exit codes: 0 ready (or the execution was found); 1 not ready;
    5 API unreachable; 4 other API error (e.g. 404 unknown execution).
    """
    from runledger import client_ops

    api = http.api_of(url, api_key)
    with http.cli_errors():
        if execution_id is None:
            raise typer.Exit(client_ops.status_overview(api, as_json))
        raise typer.Exit(client_ops.execution(api, execution_id, as_json))


def start(
    plan_file: Annotated[Path, typer.Argument(
        help="A plan ({id, steps}) or a whole start request ({plan, inputs, …}), JSON or "
        "YAML; - reads standard input.", show_default=False)],
    inputs: Annotated[list[str] | None, typer.Option(
        "--input", "-i", metavar="KEY=VALUE",
        help="An input (repeatable); a JSON value (42, true, [1]) is taken as such.")] = None,
    execution_id: Annotated[str | None, typer.Option(
        "--id", help="The execution id (default: one the API makes).", show_default=False,
    )] = None,
    environment: Annotated[str | None, typer.Option(
        "--env", help="dev, test, stage or prod (default: the file's, else dev).",
        show_default=False)] = None,
    labels: Annotated[list[str] | None, typer.Option(
        "--label", metavar="KEY=VALUE", help="A label (repeatable).")] = None,
    wait: Annotated[bool, typer.Option(
        "--wait", "-w", help="Follow it with a progress bar until it finishes.")] = False,
    url: Url = None, api_key: ApiKey = None,
) -> None:  # fmt: skip
    """Start an execution of a plan file (POST /api/v1/executions).

    Without --wait, prints the new execution's id and exits 0 once accepted.
    With --wait, shows its progress and then its steps.

    Exit codes: 0 accepted (with --wait: succeeded); 1 (with --wait) failed
    or stopped; 5 API unreachable; 3 plan or inputs refused (the problems
    are listed) or unreadable file; 4 other API error; 130 Ctrl-C.
    """
    from runledger import client_ops

    doc = _load(plan_file)
    if not isinstance(doc, dict):
        raise http.fail(f"{plan_file}: expected an object (a plan or a start request)",
                        http.INVALID)  # fmt: skip
    body: dict[str, Any] = dict(doc) if "plan" in doc or "mode" in doc else {"plan": doc}
    body["inputs"] = {**(body.get("inputs") or {}), **_pairs(inputs, "--input", parse=True)}
    body["labels"] = {**(body.get("labels") or {}), **_pairs(labels, "--label")}
    for key, value in (("execution_id", execution_id), ("environment", environment)):
        if value is not None:
            body[key] = value
    api = http.api_of(url, api_key)
    with http.cli_errors():
        raise typer.Exit(client_ops.start(api, body, wait))


def tail(
    execution_id: Annotated[str, typer.Argument(help="The execution to follow.")],
    after_seq: Annotated[int, typer.Option(
        "--after-seq", min=0, help="Start after this seq (0: from the first event).")] = 0,
    url: Url = None, api_key: ApiKey = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON event per line.")] = False,
) -> None:  # fmt: skip
    """Follow an execution's events live (the WebSocket /ws/v1/executions/{id}).

    Prints one line per event (seq, time, type, step, message) in seq order,
    history first, and stops when the execution finishes.

    Exit codes: 0 it succeeded; 1 it failed or was stopped; 5 API
    unreachable (or the tail closed early); 4 other API error (e.g. 404
    unknown execution); 130 Ctrl-C.
    """
    from runledger import client_ops

    api = http.api_of(url, api_key)
    with http.cli_errors():
        raise typer.Exit(client_ops.tail(api, execution_id, after_seq, as_json))


def export(
    fmt: Annotated[str, typer.Option(
        "--format", "-f", help="json, ndjson or csv.")] = "csv",
    kind: Annotated[str, typer.Option(
        help="records (step attempts), executions or events.")] = "records",
    filters: Annotated[list[str] | None, typer.Option(
        "--filter", metavar="KEY=VALUE", help="A filter (repeatable): execution_id, "
        "workflow_id, system, module, status, environment, step_id, error_type, from, to "
        "(ISO times).")] = None,
    mask: Annotated[list[str] | None, typer.Option(
        metavar="NAME", help="Also mask values under keys containing NAME (repeatable).",
    )] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="The file (default: the name the API gives, here).",
        show_default=False, dir_okay=False)] = None,
    url: Url = None, api_key: ApiKey = None,
) -> None:  # fmt: skip
    """Download a selection (POST /api/v1/tracking/export) into a file.

    Streams with a progress bar (bytes, rows), then prints the export id
    (X-Export-Id; GET /api/v1/exports/{id} tells its progress) and the rows.
    The file appears only once it is complete.

    Exit codes: 0 written; 5 API unreachable; 3 request refused (bad
    filter or format); 4 other API error, or the export failed midway.
    """
    from runledger.client_export import export as run_export

    chosen = _pairs(filters, "--filter")
    for key in ("since_ms", "until_ms"):
        if key in chosen and chosen[key].lstrip("-").isdigit():
            chosen[key] = int(chosen[key])
    body = {"format": fmt, "kind": kind, "filters": chosen, "mask": mask or []}
    api = http.api_of(url, api_key)
    with http.cli_errors():
        raise typer.Exit(run_export(api, body, output))


def bench(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(
        help="A benchmark in benchmarks/ (ingest, export, …; default: all of them); any "
        "further arguments go to it.", show_default=False)] = None,
) -> None:  # fmt: skip
    """Run benchmarks/NAME.py (or each one, as `make bench` does) with this Python.

    Each ends with a `BENCH {json}` line. They run in-process (their own
    broker and chDB dir), not against the running product. Options after
    NAME go to the benchmark (`runledger bench export -- --help`).

    Exit codes: the benchmark's (with all of them: the first non-zero one);
    3 unknown benchmark; 130 Ctrl-C.
    """
    found = sorted(p for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))
    if name is not None:
        found = [p for p in found if p.stem == name.removesuffix(".py")]
        if not found:
            names = ", ".join(p.stem for p in sorted(BENCHMARKS.glob("[!_]*.py"))) or "none"
            raise http.fail(f"no benchmark {name!r} in {BENCHMARKS} (there are: {names})",
                            http.INVALID)  # fmt: skip
    elif ctx.args:
        raise http.fail("arguments go to one benchmark: runledger bench NAME ARGS…",
                        http.INVALID)  # fmt: skip
    try:
        for path in found:
            if name is None:
                typer.echo(f"== {path.relative_to(BENCHMARKS.parent)}", err=True)
            code = subprocess.call([sys.executable, str(path), *ctx.args],
                                   cwd=BENCHMARKS.parent, env=os.environ.copy())  # fmt: skip
            if code:
                raise typer.Exit(code)
    except KeyboardInterrupt:
        raise typer.Exit(http.INTERRUPTED) from None


def register(app: typer.Typer) -> None:
    app.command()(status)
    app.command()(start)
    app.command()(tail)
    app.command()(export)
    app.command(context_settings={"allow_extra_args": True,
                                  "ignore_unknown_options": True})(bench)  # fmt: skip
