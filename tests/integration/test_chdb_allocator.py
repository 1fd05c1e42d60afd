"""chDB's allocator in a process that opens ClickHouse: freed pages go back to the system.

jemalloc reads its options once, when chDB loads, so each case runs in a fresh process.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

_PROBE = """
import asyncio, sys
from projections.clickhouse import ClickHouse

async def main():
    ch = ClickHouse("chdb://" + sys.argv[1])
    rows = await ch.query("SELECT stats FROM system.jemalloc_stats")
    print(rows[0]["stats"])
    ch.close()

asyncio.run(main())
"""


def _options(tmp_path: Path, **env: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k != "JE_MALLOC_CONF"} | env
    out = subprocess.run([sys.executable, "-c", _PROBE, str(tmp_path / "ch")], env=environ,
                         cwd=Path(__file__).resolve().parents[2], capture_output=True,
                         text=True, timeout=120, check=True).stdout  # fmt: skip
    return dict(re.findall(r"opt\.(background_thread|dirty_decay_ms): (\S+)", out))


def test_freed_pages_are_returned_by_a_background_thread(tmp_path: Path):
    assert _options(tmp_path) == {"background_thread": "true", "dirty_decay_ms": "1000"}


def test_an_operators_own_allocator_setting_wins(tmp_path: Path):
    options = _options(tmp_path, JE_MALLOC_CONF="dirty_decay_ms:3000")
    assert options == {"background_thread": "false", "dirty_decay_ms": "3000"}
