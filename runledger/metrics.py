"""Prometheus metrics of every Runledger process, in one place.

`runledger run` gives its children one ``PROMETHEUS_MULTIPROC_DIR`` (under the data
dir, emptied at start), so the API's `GET /metrics` shows the workers' figures and its
own (API and projector) together, through prometheus-client's multiprocess mode; the
step executor records only its tasks in flight per target system. Scaled out, each
process that serves HTTP shows its own; set the variable per host the same way.
"""

from __future__ import annotations

import os
import time
from collections import Counter as CountOf
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
if os.environ.get(MULTIPROC_ENV):  # the metrics below open their files there at once
    os.makedirs(os.environ[MULTIPROC_ENV], exist_ok=True)
_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_SLOW = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)

# API
HTTP_SECONDS = Histogram("runledger_http_request_seconds", "HTTP request latency",
                         ["method", "route", "status"], buckets=_FAST + (5.0,))  # fmt: skip
COMMANDS = Counter("runledger_commands_total", "Accepted commands and report batches",
                   ["action"])  # fmt: skip
HOOK_FAILURES = Counter("runledger_hook_failures_total",
                        "Plug-in hook calls that raised or timed out", ["hook"])  # fmt: skip
JOURNAL_COMMIT_SECONDS = Histogram("runledger_journal_commit_seconds",
                                   "Journal group-commit latency (ClickHouse insert)",
                                   buckets=_FAST)  # fmt: skip
WS_SUBSCRIBERS = Gauge("runledger_websocket_subscribers", "Open WebSocket tails",
                       multiprocess_mode="livesum")  # fmt: skip
HTTP_REFUSED = Counter("runledger_http_refused_total",
                       "Requests the edge refused before routing (back-pressure)",
                       ["reason"])  # fmt: skip
# Worker
DECIDE_SECONDS = Histogram("runledger_decide_seconds", "decide() latency per message",
                           buckets=_FAST)  # fmt: skip
EVENTS = Counter("runledger_events_total", "Events emitted by the workers", ["event_type"])
STEP_OUTCOMES = Counter("runledger_step_outcomes_total", "Step attempts that ended",
                        ["outcome", "error_type"])  # fmt: skip


def count_events(events: Iterable[Any]) -> None:
    """A worker's emitted events (``streams.contracts.Event``) by type, and the step
    attempts that ended, by outcome and error type. Counted first, then one increment per
    label set: each increment writes the multiprocess mmap file under a lock (per event,
    that was ~3 % of the worker at ingest, py-spy)."""
    kinds: CountOf[str] = CountOf()
    outcomes: CountOf[tuple[str, str]] = CountOf()
    for e in events:
        kinds[e.event_type] += 1
        if e.event_type in ("step_succeeded", "step_failed"):
            outcomes[e.event_type.removeprefix("step_"),
                     str(e.data.get("error_type") or "")] += 1  # fmt: skip
    for kind, n in kinds.items():
        EVENTS.labels(kind).inc(n)
    for (outcome, error_type), n in outcomes.items():
        STEP_OUTCOMES.labels(outcome, error_type).inc(n)


DEAD_LETTERS = Counter("runledger_dead_letters_total", "Messages parked as dead letters")
EVICTIONS = Counter("runledger_worker_evictions_total", "Executions that left a worker's "
                    "table (streams/hot_set.py): finished, or reported and idle", ["kind"])
CONSUMER_LAG = Gauge("runledger_consumer_lag", "Records behind the partition's end",
                     ["group", "topic", "partition"], multiprocess_mode="livemax")  # fmt: skip
# Projector
PROJECTOR_BATCH = Histogram("runledger_projector_batch_events", "Events per projector flush",
                            buckets=(1, 10, 50, 100, 500, 1000, 5000, 10000, 50000))  # fmt: skip
PROJECTOR_DELAY = Histogram("runledger_projector_delay_seconds",
                            "Event received → in ClickHouse", buckets=_SLOW)  # fmt: skip
# Step executor
EXECUTOR_SYSTEM_IN_FLIGHT = Gauge("runledger_executor_system_in_flight",
                                  "Step tasks running against each target system",
                                  ["system"], multiprocess_mode="livesum")  # fmt: skip


def observe_flush(group: str, events: int, received_ms: list[int],
                  partitions: dict[str, dict[str, Any]]) -> None:  # fmt: skip
    """A projector flush: its size, each sample's delay (received → projected) and the
    lag of every partition (``Projector.lag()``'s ``partitions``)."""
    PROJECTOR_BATCH.observe(events)
    now_ms = time.time() * 1000
    for ms in received_ms:
        PROJECTOR_DELAY.observe(max(now_ms - ms, 0) / 1000)
    for name, p in partitions.items():
        if p["lag"] is not None:
            topic, partition = name.rsplit("/", 1)
            CONSUMER_LAG.labels(group, topic, partition).set(p["lag"])


def exposition() -> tuple[bytes, str]:
    """The text `GET /metrics` serves: every process's figures in multiprocess mode."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST




def serve_metrics(port: int | None, host: str) -> None:
    """Scaled out, a process without an HTTP server of its own (worker, projector,
    executor) serves ``/metrics`` on ``port`` (RUNLEDGER_METRICS_PORT): what Prometheus
    scrapes and what a liveness probe asks. Unset, nothing is served."""
    if port:
        start_http_server(port, addr=host)
