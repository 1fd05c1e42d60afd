"""The step-executor registry: step types are Python entry points (DESIGN.md, Plans).

A package adds a step type by declaring, in its ``pyproject.toml``::

    [project.entry-points."runledger.step_executors"]
    my_type = "my_package.module:MyExecutor"

The object there (a class, instantiated without arguments, or an instance) has
``type``, ``config_model`` and ``async run(task, ctx) -> Result``. ``api_call`` is
simply the first of them.
"""

from __future__ import annotations

import builtins
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel

from streams.contracts import StepTask
from streams.executors.breaker import Breakers
from streams.executors.secret_store import SecretStore

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "runledger.step_executors"


@dataclass(frozen=True)
class Result:
    """What running a task gave: an output, or an error with its class; plus log lines
    (secrets already masked)."""

    output: dict[str, Any] | None = None
    error: str | None = None
    error_type: str | None = None
    retryable: bool = False
    logs: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error_type is None

    @classmethod
    def success(cls, output: dict[str, Any], logs: tuple[str, ...] = ()) -> Result:
        return cls(output=output, logs=logs)

    @classmethod
    def failure(
        cls, error: str, error_type: str, retryable: bool, logs: tuple[str, ...] = ()
    ) -> Result:
        return cls(error=error, error_type=error_type, retryable=retryable, logs=logs)


def step_http_client(max_connections: int) -> httpx.AsyncClient:
    """The HTTP client step executors share: httpx's API on aiohttp's connection pool.

    httpx's own pool cost ~1 ms of CPU per call with 64 calls in flight (httpx#3215); on
    aiohttp's pool the same loop cost ~0.25 ms (benchmarks/floor_orchestrated.py)."""
    import httpx  # here: the worker imports this module and needs no HTTP client
    from httpx_aiohttp import AiohttpTransport

    class CaseKeptHeaders(httpx.Headers):
        def items(self) -> Any:  # what aiohttp sends: header names as the plan wrote them
            return [(k.decode(self.encoding), v.decode(self.encoding)) for k, v in self.raw]

    class Transport(AiohttpTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            request.headers = CaseKeptHeaders(request.headers.raw)
            return await super().handle_async_request(request)

    limits = httpx.Limits(max_connections=max_connections)
    return httpx.AsyncClient(follow_redirects=True, limits=limits,
                             transport=Transport(limits=limits))  # fmt: skip


@dataclass
class ExecutorContext:
    """What every executor of one process shares: one HTTP client, the circuit breakers
    and the clock the breakers read (monotonic seconds)."""

    http: httpx.AsyncClient
    breakers: Breakers = field(default_factory=Breakers)
    clock: Callable[[], float] = time.monotonic
    secrets: SecretStore = field(default_factory=SecretStore.from_env)


@runtime_checkable
class Executor(Protocol):
    """A step type's executor. ``config_model`` validates ``task.config``."""

    type: str
    config_model: builtins.type[BaseModel]  # `type` is the attribute above in this scope

    async def run(self, task: StepTask, ctx: ExecutorContext) -> Result: ...


def load_executors(group: str = ENTRY_POINT_GROUP) -> dict[str, Executor]:
    """Every executor declared under the entry-point ``group``, by step type.

    One that fails to load or lacks the interface is logged and left out, so one broken
    plugin does not stop the others; its tasks then fail as ``UnknownStepType``.
    """
    found: dict[str, Executor] = {}
    for ep in sorted(entry_points(group=group), key=lambda e: (e.name, e.value)):
        try:
            obj = ep.load()
            executor = obj() if isinstance(obj, type) else obj
        except Exception:
            log.exception("cannot load step executor %s = %s", ep.name, ep.value)
            continue
        if not _fits(executor):
            log.error("step executor %s = %s lacks type / config_model / run; ignored",
                      ep.name, ep.value)  # fmt: skip
            continue
        if executor.type in found:
            log.warning("step type %r declared twice; keeping the first", executor.type)
            continue
        found[executor.type] = executor
    return found


def _fits(obj: Any) -> bool:
    model = getattr(obj, "config_model", None)
    return (isinstance(getattr(obj, "type", None), str)
            and isinstance(model, type) and issubclass(model, BaseModel)
            and callable(getattr(obj, "run", None)))  # fmt: skip
