"""Shared fixtures: a real embedded broker per test session, hypothesis profiles."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from runledger.broker import BrokerStartError, EmbeddedBroker
from runledger.settings import Settings

hypothesis_settings.register_profile("ci", max_examples=50, deadline=None)
hypothesis_settings.register_profile("dev", max_examples=200)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def embedded_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    log_dir: Path = tmp_path_factory.mktemp("broker")
    for attempt in range(3):  # the free port may be taken again before the broker binds
        broker = EmbeddedBroker(free_port(), log_dir / "broker.log")
        try:
            broker.start()
            break
        except BrokerStartError:
            if attempt == 2:
                raise
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def kafka_settings(
    embedded_broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """Settings pointing at the session's broker, with a topic prefix unique to the session."""
    return Settings(
        kafka_bootstrap=embedded_broker.bootstrap,
        data_dir=tmp_path_factory.mktemp("data"),
        partitions=4,
        topic_prefix=f"t{uuid.uuid4().hex[:8]}",
    )
