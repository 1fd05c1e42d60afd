"""Which member ids a supervised process finds from the one it replaces."""

from __future__ import annotations

from pathlib import Path

import pytest

from runledger.settings import Settings
from streams.membership import SLOT_ENV, member_file, remember, stale_members


def test_a_slot_finds_its_own_member_ids_of_every_generation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    settings = Settings(data_dir=tmp_path)
    for slot, group, member in [("1", "runledger-worker-g1", "a"),
                                ("1", "runledger-worker-g2", "b"),
                                ("11", "runledger-worker-g2", "c"),
                                ("executor", "runledger-executors-g2", "d")]:  # fmt: skip
        monkeypatch.setenv(SLOT_ENV, slot)
        remember(member_file(settings, group), member)
    monkeypatch.setenv(SLOT_ENV, "1")
    found = [(group, path.read_text()) for group, path in stale_members(settings)]
    assert found == [("runledger-worker-g1", "a"), ("runledger-worker-g2", "b")]
    monkeypatch.setenv(SLOT_ENV, "executor")
    assert [g for g, _ in stale_members(settings)] == ["runledger-executors-g2"]


def test_an_unsupervised_process_keeps_and_finds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv(SLOT_ENV, raising=False)
    settings = Settings(data_dir=tmp_path)
    assert member_file(settings, "runledger-worker-g1") is None
    remember(member_file(settings, "runledger-worker-g1"), "a")
    assert stale_members(settings) == [] and not (tmp_path / "members").exists()
