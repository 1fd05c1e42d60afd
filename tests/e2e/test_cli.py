"""The client commands (`runledger status|start|tail|export`) as a user runs them: separate
processes against the running product, checked by their output and exit codes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from runledger.cli import app
from tests.e2e.conftest import Product, free_port, wait_for
from tests.e2e.plans import new_eid
from tests.http_stub import Stub


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RUNLEDGER_API_KEY", "RUNLEDGER_API_URL")}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "runledger.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def plan(service: Stub, tag: str, path: str = "json") -> dict[str, Any]:
    return {"id": "p_cli", "steps": [
        {"id": "fetch", "type": "api_call", "system": "ERP",
         "config": {"url": f"{service.base_url}/{path}/{tag}?n={{{{ input.n }}}}"}},
        {"id": "shape", "type": "transform", "dependsOn": ["fetch"],
         "config": {"mapping": {"status": "{{ fetch.status }}", "n": "{{ input.n }}"}}},
    ]}  # fmt: skip


@pytest.fixture(scope="module")
def started(product: Product, service: Stub, tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[str, subprocess.CompletedProcess[str]]:  # fmt: skip
    """One execution started with `runledger start --wait` from a YAML plan file."""
    import yaml

    eid = new_eid("cli")
    path = tmp_path_factory.mktemp("cli") / "plan.yaml"
    path.write_text(yaml.safe_dump(plan(service, eid)))
    return eid, cli("start", str(path), "--input", "n=3", "--id", eid, "--wait",
                    "--url", product.base_url)  # fmt: skip


def test_status_says_ready(product: Product):
    done = cli("status", "--url", product.base_url)
    assert done.returncode == 0, done.stderr
    assert "ready" in done.stdout and "yes" in done.stdout and "clickhouse" in done.stdout
    as_json = json.loads(cli("status", "--json", "--url", product.base_url).stdout)
    assert as_json["ready"] is True and as_json["checks"]["workers"] is True


def test_start_waits_for_success_and_the_execution_is_there(
    started: tuple[str, subprocess.CompletedProcess[str]], api: httpx.Client, service: Stub
):
    eid, done = started
    assert done.returncode == 0, done.stdout + done.stderr
    assert "succeeded" in done.stdout and "shape" in done.stdout
    detail = api.get(f"/api/v1/executions/{eid}").json()["data"]
    assert detail["status"] == "succeeded"
    outputs = {s["step_id"]: s["output"] for s in detail["steps"]}
    assert outputs["shape"] == {"status": 200, "n": 3}
    assert service.count(f"/json/{eid}") == 1


def test_a_failing_execution_exits_1(product: Product, service: Stub, tmp_path: Path):
    eid = new_eid("clifail")
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan(service, eid, "status/400")))
    done = cli("start", str(path), "-i", "n=1", "--id", eid, "--wait", "--url", product.base_url)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "failed" in done.stdout
    tail = cli("tail", eid, "--url", product.base_url)
    assert tail.returncode == 1 and "step_failed" in tail.stdout, tail.stdout + tail.stderr


def test_a_bad_plan_exits_3_naming_the_field(product: Product, tmp_path: Path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"id": "p", "steps": [{"type": "transform",
                                                      "config": {"mapping": {}}}]}))  # fmt: skip
    done = cli("start", str(path), "--url", product.base_url)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "422" in done.stderr and "plan.steps.0.id" in done.stderr
    assert "Traceback" not in done.stderr
    missing = cli("start", str(tmp_path / "nope.json"), "--url", product.base_url)
    assert missing.returncode == 3 and "cannot read" in missing.stderr


def test_tail_prints_a_finished_execution_in_seq_order(
    started: tuple[str, subprocess.CompletedProcess[str]], product: Product
):
    eid, _ = started
    done = cli("tail", eid, "--url", product.base_url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    seqs = [int(line.split()[0]) for line in lines]
    assert seqs == list(range(1, len(seqs) + 1))
    assert lines[0].split()[2] == "execution_started"
    assert lines[-1].split()[2] == "execution_completed"
    assert any(line.split()[2:4] == ["step_succeeded", "shape"] for line in lines)
    as_json = cli("tail", eid, "--json", "--after-seq", "2", "--url", product.base_url)
    events = [json.loads(x) for x in as_json.stdout.splitlines()]
    assert [e["seq"] for e in events] == seqs[2:]


def test_export_writes_the_rows_of_a_filter(
    started: tuple[str, subprocess.CompletedProcess[str]], product: Product, tmp_path: Path
):
    eid, _ = started
    target = tmp_path / "records.csv"

    def exported() -> subprocess.CompletedProcess[str] | None:
        done = cli("export", "--format", "csv", "--filter", f"execution_id={eid}", "-o",
                   str(target), "--url", product.base_url)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done if "2 rows" in done.stdout else None  # projected with the detail

    done = wait_for(exported, timeout=10, interval=0.5)
    assert "export exp_" in done.stdout and "2 rows" in done.stdout
    with target.open() as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["execution_id"], r["step_id"], r["status"]) for r in rows) == [
        (eid, "fetch", "succeeded"), (eid, "shape", "succeeded")]  # fmt: skip
    bad = cli("export", "--filter", "colour=red", "--url", product.base_url)
    assert bad.returncode == 3 and "filters.colour" in bad.stderr


def test_an_unreachable_api_exits_2(tmp_path: Path):
    url = f"http://127.0.0.1:{free_port()}"
    for args in (("status",), ("export", "-o", str(tmp_path / "x.csv")), ("tail", "e1")):
        done = cli(*args, "--url", url)
        assert done.returncode == 5, (args, done.stderr)
        assert done.stderr.strip().count("\n") == 0 and "cannot reach the API" in done.stderr
    assert not (tmp_path / "x.csv").exists()


def test_every_client_command_explains_its_exit_codes():
    runner = CliRunner()
    for command in ("status", "start", "tail", "export", "bench"):
        shown = runner.invoke(app, [command, "--help"], env={"COLUMNS": "120"})
        assert shown.exit_code == 0 and "Exit codes" in shown.output, command
