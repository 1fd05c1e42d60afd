"""A real ClickHouse (chDB) for the integration tests.

chDB opens one data dir per process for the whole process life, so the session gets one
dir (``clickhouse_dsn``: give it to anything else in this process that needs ClickHouse)
and tests isolate by database: each test gets a fresh, migrated one.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from projections.clickhouse import ClickHouse
from projections.schema import migrate


@pytest.fixture(scope="session")
def clickhouse_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('chdb').resolve()}"


@pytest.fixture(scope="session")
def clickhouse(clickhouse_dsn: str) -> Iterator[ClickHouse]:
    ch = ClickHouse(clickhouse_dsn)
    yield ch
    ch.close()


@pytest.fixture
async def database(clickhouse: ClickHouse) -> AsyncIterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    await migrate(clickhouse, name)
    yield name
    await clickhouse.command(f"DROP DATABASE IF EXISTS {name}")
