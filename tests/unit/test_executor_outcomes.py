"""The executors' record of finished tasks: what was recorded is there after a kill -9."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from streams.executors import outcomes as outcomes_mod
from streams.executors.outcomes import Outcomes

_WRITE_THEN_DIE = """
import os, signal, sys
from pathlib import Path
from streams.executors.outcomes import Outcomes
o = Outcomes(Path(sys.argv[1]))
o.put("e1/fetch/1", b'{"phase": "succeeded"}', 1000)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_an_outcome_recorded_before_a_kill_is_found_after_it(tmp_path: Path):
    path = tmp_path / "executor" / "outcomes.sqlite3"
    done = subprocess.run([sys.executable, "-c", _WRITE_THEN_DIE, str(path)],
                          cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    assert done.returncode == -9
    store = Outcomes(path)
    assert store.get("e1/fetch/1") == b'{"phase": "succeeded"}'
    assert store.get("e1/fetch/2") is None
    store.close()


def test_old_outcomes_are_pruned(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(outcomes_mod, "PRUNE_EVERY", 2)
    store = Outcomes(tmp_path / "o.sqlite3")
    store.put("old", b"a", 0)
    store.put("new", b"b", outcomes_mod.RETENTION_MS + 1)  # the second write prunes
    assert store.get("old") is None and store.get("new") == b"b"
    store.close()
