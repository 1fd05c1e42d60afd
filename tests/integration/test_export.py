"""Exports against a real chDB: every format parses and holds exactly the selected rows,
secrets are masked (configured patterns and the request's names, nested too), empty
selections are valid empty files, and the registry counts what was written."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
import pytest

from projections import export, tracking
from projections.clickhouse import ClickHouse
from projections.export import export_stream
from projections.export_status import ExportRegistry
from projections.filters import Filters
from projections.rows import project
from projections.writer import write_projection
from runledger.settings import Settings
from streams.executors.masking import MASK, Masker
from tests.event_factory import T0, History, recon_execution, single_system_execution

SECRET_DATA = {"password": "hunter2", "user": "ann", "nested": {
    "Api-Key": "k-1", "pin": "1234", "list": [{"session_token": "t"}]}}  # fmt: skip


def secret_execution() -> History:
    h = History("exec_secret", workflow_id="wf_secret")
    h.add("execution_started", T0 + 70, mode="tracked", workflow_id="wf_secret",
          labels={"team": "ops", "api_key": "label-secret"})  # fmt: skip
    h.add("step_started", T0 + 80, "login", system="IAM", module="Auth")
    h.add("log", T0 + 90, "login", message="logging in", level="info", **SECRET_DATA)
    h.add("step_failed", T0 + 100, "login", system="IAM", module="Auth",
          error="bad password for ann", error_type="Auth", retryable=False)  # fmt: skip
    return h


@pytest.fixture
async def dataset(clickhouse: ClickHouse, database: str) -> str:
    events = [*recon_execution().events, *single_system_execution().events,
              *secret_execution().events]  # fmt: skip
    await write_projection(clickhouse, project(events, {}), database=database)
    return database


async def _export(ch: ClickHouse, db: str, kind: Any, fmt: Any, masker: Masker | None = None,
                  **filters: Any) -> tuple[bytes, Any]:  # fmt: skip
    status = ExportRegistry().start(kind, fmt)
    chunks = export_stream(ch, db, kind=kind, fmt=fmt, filters=Filters(**filters),
                           masker=masker or Masker.of(Settings().mask_patterns), status=status)
    return b"".join([c async for c in chunks]), status


def _parse(fmt: str, body: bytes) -> list[dict[str, Any]]:
    if fmt == "json":
        return list(orjson.loads(body))
    if fmt == "ndjson":
        return [orjson.loads(line) for line in body.splitlines()]
    return list(csv.DictReader(io.StringIO(body.decode())))


def _as_csv(row: dict[str, Any]) -> dict[str, str]:
    def text(v: Any) -> str:
        if v is None:
            return ""
        return ("true" if v else "false") if isinstance(v, bool) else str(v)

    return {k: text(v) for k, v in row.items()}


def _key(r: dict[str, Any]) -> tuple[str, str, str, int]:
    """Records are exported in start order (ISO times of one format sort as strings)."""
    return (r["started_at"], r["execution_id"], r["step_id"], int(r["attempt"]))


@pytest.mark.parametrize("page", [50_000, 2])  # one slice, and slices of about 2 records
async def test_records_in_every_format_hold_exactly_the_selection(
    clickhouse: ClickHouse, dataset: str, page: int, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(export, "ENGINE_PAGE", page)
    ch, db = clickhouse, dataset
    expected = (await tracking.tracking_records(ch, limit=1000, workflow_id="wf_recon",
                                                database=db))["items"]  # fmt: skip
    expected = sorted(({k: v for k, v in r.items() if k in export.RECORD_COLUMNS}
                       for r in expected), key=_key)  # fmt: skip
    assert len(expected) == 7
    for fmt in ("json", "ndjson", "csv"):
        body, status = await _export(ch, db, "records", fmt, workflow_id="wf_recon")
        rows = _parse(fmt, body)
        want = [_as_csv(r) for r in expected] if fmt == "csv" else expected
        assert rows == want, fmt
        assert (status.rows, status.finished, status.error) == (7, True, None)
    body, _ = await _export(ch, db, "records", "csv", workflow_id="wf_recon")
    assert body.splitlines()[0] == b",".join(c.encode() for c in export.RECORD_COLUMNS)
    # The status filter selects the records of failed executions (exec_secret has a failed
    # step but is still running).
    failed, _ = await _export(ch, db, "records", "ndjson", status="failed")
    assert {r["execution_id"] for r in _parse("ndjson", failed)} == {"exec_recon"}


async def test_events_and_executions_mask_configured_and_requested_names(
    clickhouse: ClickHouse, dataset: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(export, "PYTHON_PAGE", 3)  # 4 events: two pages
    ch, db = clickhouse, dataset
    masker = Masker.of(Settings().mask_patterns, ["pin", "message"])
    for fmt in ("json", "ndjson", "csv"):
        body, status = await _export(ch, db, "events", fmt, masker, execution_id="exec_secret")
        rows = _parse(fmt, body)
        assert [int(r["seq"]) for r in rows] == [1, 2, 3, 4] and status.rows == 4
        log = rows[2]
        data = orjson.loads(log["data"]) if fmt == "csv" else log["data"]
        assert data["password"] == MASK and data["user"] == "ann"  # configured pattern
        assert data["nested"]["Api-Key"] == MASK  # built-in rule, any case, nested
        assert data["nested"]["pin"] == MASK  # the request's exact name, nested
        assert data["nested"]["list"] == [{"session_token": MASK}]
        assert all(r["message"] == MASK for r in rows)  # a requested top-level field
        started = orjson.loads(rows[0]["data"]) if fmt == "csv" else rows[0]["data"]
        assert started["labels"] == {"team": "ops", "api_key": MASK}
    assert b"hunter2" not in body and b"1234" not in body and b"label-secret" not in body

    body, status = await _export(ch, db, "executions", "json", workflow_id="wf_secret")
    [row] = _parse("json", body)
    assert row["labels"] == {"team": "ops", "api_key": MASK}
    assert (row["status"], row["systems"], row["failed_steps"]) == ("running", ["IAM"], 1)
    assert row["started_at"] == "2025-09-01T09:46:40.070Z" and status.rows == 1
    both, _ = await _export(ch, db, "executions", "csv", since_ms=T0, until_ms=T0 + 60)
    rows = _parse("csv", both)  # in start order
    assert [r["execution_id"] for r in rows] == ["exec_recon", "exec_erp"]
    assert rows[0]["started_at"] < rows[1]["started_at"]

    # Records: a requested column is masked whole, in every row.
    body, _ = await _export(ch, db, "records", "csv", Masker.of((), ["error"]),
                            execution_id="exec_secret")  # fmt: skip
    assert [r["error"] for r in _parse("csv", body)] == [MASK] and b"bad password" not in body


async def test_an_empty_selection_is_a_valid_empty_file(clickhouse: ClickHouse, dataset: str):
    for kind in ("records", "executions", "events"):
        empty = {fmt: await _export(clickhouse, dataset, kind, fmt, workflow_id="nope")
                 for fmt in ("json", "ndjson", "csv")}  # fmt: skip
        assert orjson.loads(empty["json"][0]) == []
        assert empty["ndjson"][0] == b""
        header = ",".join(export.COLUMNS[kind]) + "\n"
        assert empty["csv"][0].decode() == header
        assert all(s.rows == 0 and s.finished for _, s in empty.values())


def test_the_registry_keeps_the_latest_exports():
    registry = ExportRegistry(size=3)
    ids = [registry.start("records", "csv").export_id for _ in range(5)]
    assert [registry.get(i) is not None for i in ids] == [False, False, True, True, True]
    status = registry.get(ids[-1])
    assert status is not None and not status.finished
    status.rows = 5
    status.end()
    assert status.as_dict()["finished"] and status.as_dict()["finished_at"]


async def test_any_replica_reads_an_exports_progress_from_clickhouse(
    clickhouse: ClickHouse, database: str
):
    from projections import export_status as export_log

    status = ExportRegistry().start("records", "csv", tenant="acme")
    assert await export_log.load(clickhouse, database, status.export_id) is None
    status.rows = 1200
    await export_log.save(clickhouse, database, status)
    seen = await export_log.load(clickhouse, database, status.export_id)
    assert seen is not None and seen.as_dict() == status.as_dict()  # running, 1,200 rows
    status.rows = 5000
    status.end()
    await export_log.save(clickhouse, database, status)
    seen = await export_log.load(clickhouse, database, status.export_id)
    assert seen is not None and seen.as_dict() == status.as_dict()
    assert seen.finished and seen.rows == 5000 and seen.tenant == "acme"
