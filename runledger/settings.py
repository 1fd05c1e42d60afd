"""One settings class for every process (environment variables ``RUNLEDGER_*``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.limits import Limits


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RUNLEDGER_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    api_url: str | None = Field(default=None, description="the API as other processes reach "
                                "it; default http://HOST:PORT")  # fmt: skip
    limits_poll_interval: float = Field(default=10.0, gt=0)
    # API keys (api/auth.py): key (or "sha256:<hex>") → {"tenant", "role", "name"}; none
    # set: open mode
    api_keys: dict[str, dict[str, str]] = Field(default_factory=dict)
    api_keys_file: Path | None = None
    api_key: str | None = Field(default=None, description="the key this process calls the "
                                "API with (an executor reading the limits needs admin)")
    data_dir: Path = Path("./data")
    ui_dir: Path = Field(default=Path(__file__).resolve().parents[1] / "ui",
                         description="the Execution Center page: ui/ with its npm packages")

    kafka_bootstrap: str | None = Field(
        default=None, description="Kafka bootstrap servers; unset = start the embedded broker"
    )
    kafka_port: int = 19092
    clickhouse_dsn: str | None = Field(
        default=None, description="chdb:///dir or http://host:8123; default chdb://$DATA_DIR/clickhouse"
    )
    clickhouse_database: str = "runledger"
    metrics_port: int | None = Field(default=None, ge=1, le=65535, description="scaled out: "
                                     "a worker, projector or executor serves /metrics here")
    partitions: int = 12
    replication_factor: int = Field(default=1, ge=1, description="of the topics `topics "
                                    "create` makes (3 on a production Kafka cluster)")
    topic_prefix: str = "runledger"
    workers: int = 1
    generations: bool | None = Field(
        default=None,
        description="roll topics over into generations; default: on with the embedded broker",
    )
    generation_max_records: int = Field(
        default=2_000_000, ge=1_000,
        description="records in a generation's topics (all partitions) that start the next",
    )  # fmt: skip
    generation_max_broker_mb: int = Field(
        default=1024, ge=64,
        description="the embedded broker's memory (RSS) that starts the next generation",
    )  # fmt: skip
    generation_check_interval: float = 10.0
    generation_quiet_seconds: float = Field(
        default=300.0, ge=0,
        description="a generation that grew by fewer records than this many seconds, over "
                    "as many seconds, is quiet: it moves to the next once it holds "
                    "generation_quiet_min_records (0: never for quietness)",
    )  # fmt: skip
    generation_quiet_min_records: int = Field(
        default=100_000, ge=1,
        description="records a quiet generation must hold for a move to the next",
    )  # fmt: skip
    generation: int = Field(
        default=0, ge=0, description="the topic generation in use (0: names without one)"
    )

    finished_ttl: float = 900.0
    idle_ttl: float = Field(
        default=300.0, ge=0,
        description="a reported execution that has not finished leaves the worker's memory "
                    "after this many seconds with no event (0: never); its next report "
                    "brings it back (streams/hot_set.py)",
    )  # fmt: skip
    idle_sweep_interval: float = Field(
        default=60.0, gt=0,
        description="how often the API looks for executions out of the worker's memory "
                    "whose tracked idle timeout has come (api/idle_sweep.py)",
    )  # fmt: skip
    tracked_idle_timeout: float = 86_400.0
    command_wait: float = 5.0
    publish_timeout: float = Field(default=10.0, gt=0, description="a broker that takes no "
                                   "write this long gets commands a 503")  # fmt: skip
    timer_scan_interval: float = 0.25
    ws_heartbeat_interval: float = 15.0
    projector_max_batch: int = 5_000
    projector_max_delay: float = 0.5
    reconcile_after: float = 30.0
    reconcile_interval: float = 10.0
    executor_concurrency: int = Field(default=64, ge=1, description="step tasks run at once")
    log_level: str = "INFO"
    # One log line per HTTP request (uvicorn's access log). Off: at a thousand requests a
    # second it was ~6 % of the API's event loop, and /metrics counts requests by route.
    access_log: bool = False
    mask_patterns: list[str] = Field(
        default=["password", "token", "secret", "authorization", "api_key", "cookie"],
        description="key name parts whose values the read side shows as ***",
    )
    # limits on running orchestrated executions (streams/limits.py); PUT /admin/limits
    # changes them at runtime. Dicts are JSON: RUNLEDGER_MAX_RUNNING_PER_SYSTEM='{"ERP": 5}'
    max_running: int | None = Field(default=None, ge=1)
    max_running_per_tenant: dict[str, int] = Field(default_factory=dict)
    max_running_per_workflow: dict[str, int] = Field(default_factory=dict)
    max_running_per_system: dict[str, int] = Field(default_factory=dict)
    max_queued: int = Field(default=10_000, ge=0)

    # limits (back-pressure)
    max_body_bytes: int = Field(
        default=10_485_760, ge=1,
        description="request bodies over this many bytes get 413 (a 5,000-event batch fits)",
    )  # fmt: skip
    rate_limit: float | None = Field(
        default=None, gt=0, description="requests per second per client (API key, else IP) "
        "before 429; unset = no limit; each API process counts on its own",
    )  # fmt: skip
    rate_limit_burst: int | None = Field(
        default=None, ge=1, description="requests a client may send at once; unset = the rate "
        "(at least 1)",
    )  # fmt: skip
    system_concurrency: dict[str, int] = Field(
        default_factory=dict, description='step tasks in flight at once per target system, '
        'as JSON: {"ERP": 5}; per executor process',
    )  # fmt: skip
    system_concurrency_default: int | None = Field(
        default=None, ge=1, description="the cap of every system not in system_concurrency; "
        "unset = none",
    )  # fmt: skip

    @property
    def embedded_broker(self) -> bool:
        return not self.kafka_bootstrap

    @property
    def uses_generations(self) -> bool:
        return self.embedded_broker if self.generations is None else self.generations

    @property
    def api_base(self) -> str:
        """Where other processes reach the API (the executors read the limits there)."""
        if self.api_url:
            return self.api_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def dsn(self) -> str:
        if self.clickhouse_dsn:
            return self.clickhouse_dsn
        return f"chdb://{self.data_dir.resolve() / 'clickhouse'}"

    @property
    def uses_chdb(self) -> bool:
        return self.dsn.startswith("chdb://")

    def topic(self, name: str) -> str:
        """A topic's full name: ``runledger.events``, or ``runledger.g3.events`` in
        generation 3."""
        if self.generation:
            return f"{self.topic_prefix}.g{self.generation}.{name}"
        return f"{self.topic_prefix}.{name}"

    @property
    def broker_pid_file(self) -> Path:
        """Where the supervisor writes the embedded broker's pid (its memory is watched)."""
        return self.data_dir / "broker.pid"

    @property
    def limits(self) -> Limits:
        return Limits(max_running=self.max_running, tenants=self.max_running_per_tenant,
                      workflows=self.max_running_per_workflow,
                      systems=self.max_running_per_system, max_queued=self.max_queued)

    def at_generation(self, generation: int) -> Settings:
        return self.model_copy(update={"generation": generation})


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
