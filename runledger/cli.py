"""The `runledger` command line."""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from aiokafka.errors import KafkaConnectionError, KafkaError
from rich.progress import TaskID

from runledger import client_cli, client_http, generations
from runledger.broker import BrokerStartError
from runledger.kafka import (
    TopicCreationError,
    TopicPartitionMismatch,
    create_topics,
    patch_broker_quirks,
)
from runledger.logs import setup_logging
from runledger.metrics import serve_metrics
from runledger.settings import Settings

log = logging.getLogger("runledger.cli")

app = typer.Typer(
    help="Runledger: event-sourced execution center.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
topics_app = typer.Typer(help="Manage Runledger's Kafka topics.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
projections_app = typer.Typer(help="Manage the ClickHouse projections.", no_args_is_help=True)
app.add_typer(projections_app, name="projections")


def _fail(message: str) -> typer.Exit:
    return client_http.fail(message, 1)


def _settings() -> Settings:
    settings: Settings = client_http.load_settings(1)
    return settings


@contextmanager
def _expected_errors(settings: Settings) -> Iterator[None]:
    """Turn expected failures into one line on stderr and exit code 1."""
    try:
        yield
    except KafkaConnectionError:
        raise _fail(f"cannot reach Kafka at {settings.bootstrap}") from None
    except (TopicPartitionMismatch, TopicCreationError, BrokerStartError) as exc:
        raise _fail(str(exc)) from None
    except KafkaError as exc:
        raise _fail(f"Kafka error ({settings.bootstrap}): {exc!r}") from None


# The cyclic garbage collector's young generation is collected every 50,000 container
# allocations instead of Python's 700. The hot paths hold thousands of short-lived models
# per batch (a request's events, a batch's states), which the default scanned and promoted
# over and over. Measured on `benchmarks/ingest.py --events 100000` (2 cores): end to end
# 4,583–4,706 → 5,729–6,421 events/s, accepted 8,061–8,840 → 11,289–12,395 events/s.
GC_THRESHOLDS = (50_000, 20, 20)


def _start(process_name: str) -> Settings:
    settings = _settings()
    setup_logging(settings.log_level, process_name)
    patch_broker_quirks()  # before any consumer exists, Faust's included
    gc.set_threshold(*GC_THRESHOLDS)
    return settings


def _run_entry(settings: Settings, entry: Callable[[Settings], object]) -> None:
    with _expected_errors(settings):
        entry(settings)


@app.command()
def run(
    workers: Annotated[
        int | None, typer.Option("--workers", "-w", min=1, help="Worker processes.")
    ] = None,
) -> None:
    """Start everything: embedded broker (unless RUNLEDGER_KAFKA_BOOTSTRAP), workers, API."""
    from runledger import supervisor

    settings = _start("supervisor")
    with _expected_errors(settings):
        code = supervisor.run(settings, workers or settings.workers)
    raise typer.Exit(code)


@app.command()
def worker() -> None:
    """Run one stream worker (the execution state machine)."""
    settings = _start(f"worker-{os.environ.get('RUNLEDGER_WORKER_INDEX', '0')}")
    serve_metrics(settings.metrics_port, settings.host)

    def entry(s: Settings) -> None:
        from streams.app import run_worker

        run_worker(s)

    _run_entry(settings, entry)


@app.command()
def api() -> None:
    """Run the HTTP/WebSocket API (and, with chDB, the projector and journal)."""
    settings = _start("api")

    def entry(s: Settings) -> None:
        import uvicorn

        uvicorn.run(
            "api.app:create_app",
            factory=True,
            host=s.host,
            port=s.port,
            log_level=s.log_level.lower(),
            log_config=None,  # keep our JSON logging
            access_log=s.access_log,
        )

    _run_entry(settings, entry)


@app.command()
def projector() -> None:
    """Run the events → ClickHouse projector as its own process (ClickHouse server only)."""
    settings = _start("projector")
    serve_metrics(settings.metrics_port, settings.host)

    def entry(s: Settings) -> None:
        from projections.service import run_projector

        result: object = run_projector(s)
        if inspect.iscoroutine(result):  # async or sync entry point, both work
            asyncio.run(result)

    _run_entry(settings, entry)


@app.command()
def executor() -> None:
    """Run the step executor: step tasks (HTTP calls, …) in, step events out."""
    settings = _start("executor")
    serve_metrics(settings.metrics_port, settings.host)

    def entry(s: Settings) -> None:
        from streams.executors.service import run_executors

        asyncio.run(run_executors(s))

    _run_entry(settings, entry)


@topics_app.command("create")
def topics_create() -> None:
    """Create every topic with RUNLEDGER_PARTITIONS partitions and verify the counts."""
    settings = _start("cli")

    def entry(s: Settings) -> None:
        s = generations.resolve_blocking(s)
        asyncio.run(create_topics(s))
        typer.echo(f"topics ready ({s.partitions} partitions) on {s.bootstrap}")

    _run_entry(settings, entry)


@app.command("restore")
def restore_command(
    force: Annotated[bool, typer.Option(help="Restore even if the topics hold records.")] = False,
) -> None:
    """Rebuild the broker's contents from ClickHouse (disaster recovery, e.g. a fresh Kafka).

    Creates the topics, sends every unfinished execution its archived state, and appends
    again the journal entries no archived event cites. The API does this by itself at
    start when the embedded broker is empty. With chDB the data dir must not be open
    (stop the product first); with a ClickHouse server it can run any time.
    """
    settings = _start("cli")

    def entry(s: Settings) -> None:
        code = asyncio.run(_restore(s, force))
        if code:
            raise typer.Exit(code)

    _run_entry(settings, entry)


async def _restore(settings: Settings, force: bool) -> int:
    from rich.progress import Progress

    from projections.clickhouse import ClickHouse
    from projections.schema import migrate
    from runledger.kafka import make_producer
    from runledger.restore import broker_is_empty, restore

    settings = await generations.resolve(settings)
    await create_topics(settings)
    if not force and not await broker_is_empty(settings):
        typer.echo("the topics already hold records; use --force to restore anyway", err=True)
        return 2
    ch = ClickHouse(settings.dsn)
    producer = make_producer(settings)
    await producer.start()
    try:
        await migrate(ch, settings.clickhouse_database)
        with Progress() as bar:
            tasks: dict[str, TaskID] = {}

            def progress(phase: str, done: int, total: int) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(phase, total=total)
                bar.update(tasks[phase], completed=done)

            report = await restore(settings, ch, producer, database=settings.clickhouse_database,
                                   progress=progress)  # fmt: skip
    finally:
        await producer.stop()
        ch.close()
    typer.echo(f"restored {report.executions} executions and {report.entries} journal entries "
               f"in {report.seconds:.1f}s")  # fmt: skip
    return 0


@projections_app.command("rebuild")
def projections_rebuild(
    offline: Annotated[bool, typer.Option(
        help="Open the data dir here instead of asking the running API (product stopped).",
    )] = False,
    url: Annotated[str | None, typer.Option(help="The API's base URL.")] = None,
) -> None:  # fmt: skip
    """Drop and rebuild executions, step_records (and views on them) from the events table.

    By default the running API does it (chDB lets only that process open the data dir; it
    pauses its projector meanwhile) and this command shows its progress. With --offline,
    when the product is stopped, this process opens the data dir and does it itself.
    """
    from runledger.rebuild_cli import RebuildFailed, rebuild_offline, rebuild_online

    settings = _start("cli")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    try:
        if offline:
            code = asyncio.run(rebuild_offline(settings))
        else:
            code = rebuild_online(url or f"http://{host}:{settings.port}")
    except RebuildFailed as exc:
        raise _fail(str(exc)) from None
    raise typer.Exit(code)


client_cli.register(app)  # status, start, tail, export, bench (over the running API)

if __name__ == "__main__":
    app()
