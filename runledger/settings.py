"""One settings class for every process (environment variables ``RUNLEDGER_*``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RUNLEDGER_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("./data")

    kafka_bootstrap: str | None = Field(
        default=None, description="Kafka bootstrap servers; unset = start the embedded broker"
    )
    kafka_port: int = 19092
    clickhouse_dsn: str | None = Field(
        default=None, description="chdb:///dir or http://host:8123; default chdb://$DATA_DIR/clickhouse"
    )
    clickhouse_database: str = "runledger"
    partitions: int = 12
    topic_prefix: str = "runledger"
    workers: int = 1

    finished_ttl: float = 900.0
    tracked_idle_timeout: float = 86_400.0
    command_wait: float = 5.0
    timer_scan_interval: float = 0.25
    ws_heartbeat_interval: float = 15.0
    projector_max_batch: int = 5_000
    projector_max_delay: float = 0.5
    reconcile_after: float = 30.0
    reconcile_interval: float = 10.0
    executor_concurrency: int = Field(default=64, ge=1, description="step tasks run at once")
    log_level: str = "INFO"
    mask_patterns: list[str] = Field(
        default=["password", "token", "secret", "authorization", "api_key", "cookie"],
        description="key name parts whose values the read side shows as ***",
    )

    @property
    def embedded_broker(self) -> bool:
        return not self.kafka_bootstrap

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
        return f"{self.topic_prefix}.{name}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
