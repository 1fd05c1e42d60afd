"""`runledger projections rebuild`: follow the running API's rebuild with a progress bar,
or (--offline, the product stopped) rebuild here. Failures raise RebuildFailed, which the
CLI turns into an error message and exit code 1."""

from __future__ import annotations

from collections.abc import Callable

import typer

from runledger.settings import Settings


class RebuildFailed(RuntimeError):
    """The rebuild could not be started or followed (the message says why)."""


def _rebuild_bar() -> tuple[object, Callable[[dict[str, object]], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(),
                   MofNCompleteColumn(), TimeElapsedColumn())  # fmt: skip
    task = bar.add_task("events folded", total=None)

    def show(run: dict[str, object]) -> None:
        total = run.get("total_events")
        bar.update(task, total=int(total) if isinstance(total, int) else None,
                   completed=int(run.get("events") or 0))  # type: ignore[call-overload]

    return bar, show


def _rebuild_done(run: dict[str, object]) -> int:
    if run.get("state") != "finished":
        typer.echo(f"error: rebuild {run.get('rebuild_id')} {run.get('state')}: "
                   f"{run.get('error')}", err=True)  # fmt: skip
        return 1
    typer.echo(f"rebuilt {', '.join(map(str, run.get('tables') or ()))} from "  # type: ignore[call-overload]
               f"{run.get('events')} events of {run.get('executions')} executions")
    return 0


def rebuild_online(base_url: str) -> int:
    import time

    import httpx
    from rich.progress import Progress

    path = "/api/v1/admin/projections/rebuild"
    try:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            answer = client.post(path)
            if answer.status_code not in (202, 409):
                raise RebuildFailed(f"{base_url} answered {answer.status_code}: "
                                    f"{answer.text[:300]}")
            if answer.status_code == 409:
                typer.echo("a rebuild is already running; following it", err=True)
            bar, show = _rebuild_bar()
            assert isinstance(bar, Progress)
            with bar:
                while True:
                    run = client.get(path).json()["data"]
                    show(run)
                    if run["state"] != "running":
                        break
                    time.sleep(0.5)
    except httpx.HTTPError as exc:
        raise RebuildFailed(f"cannot reach the API at {base_url} ({exc!r}); if the product is "
                    "stopped, use --offline") from None  # fmt: skip
    return _rebuild_done(run)


async def rebuild_offline(settings: Settings) -> int:
    from rich.progress import Progress

    from projections.clickhouse import ClickHouse
    from projections.rebuild import rebuild_projections
    from projections.schema import migrate

    ch = ClickHouse(settings.dsn)
    try:
        try:
            await migrate(ch, settings.clickhouse_database)
        except Exception as exc:
            raise RebuildFailed(f"cannot open {settings.dsn} ({exc}); is the product running? then "
                        "leave out --offline") from None  # fmt: skip
        bar, show = _rebuild_bar()
        assert isinstance(bar, Progress)
        with bar:
            run = await rebuild_projections(ch, settings.clickhouse_database,
                                            on_progress=lambda r: show(r.as_dict()))  # fmt: skip
    finally:
        ch.close()
    return _rebuild_done(run.as_dict())
