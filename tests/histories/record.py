"""Record scenario histories as JSONL (run by hand when the machine learns something new).

    python -m tests.histories.record

Each line is one input message with the events decide() emitted for it; the last line
is the final state. tests/unit/test_replay.py replays them against today's code.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from streams.contracts import FinishExecution, Report, ReportBatch, StartExecution, Wake
from streams.machine import MachineConfig, decide
from streams.plan import Plan

HERE = Path(__file__).parent
CFG = MachineConfig(tracked_idle_timeout_ms=60_000)
PLAN = Plan.model_validate({"id": "recon", "name": "跨系统对账", "steps": [
    {"id": "fetch", "system": "ERP", "module": "Orders"},
    {"id": "stock", "dependsOn": ["fetch"], "system": "WMS", "module": "Stock"},
    {"id": "post", "dependsOn": ["stock"], "system": "FIN", "module": "Ledger"},
]})  # fmt: skip


def _r(rid: str, kind: str, step: str | None, ts: int, **data: object) -> Report:
    return Report(report_id=rid, event_type=kind, step_id=step, timestamp=ts, data=data)


def scenarios() -> dict[str, list]:
    e = "exec_hist"
    return {
        "tracked_plan_failed": [
            StartExecution(execution_id=e, received_at=1_000, command_id="c1", plan=PLAN),
            ReportBatch(execution_id=e, received_at=2_000, reports=(
                _r("r1", "step_started", "fetch", 1_100),
                _r("r2", "step_succeeded", "fetch", 1_250),
                _r("r3", "log", None, 1_260, level="warn"))),
            ReportBatch(execution_id=e, received_at=3_000, reports=(
                _r("r4", "step_failed", "stock", 1_400, duration_ms=90, error="gone",
                   error_type="ServiceUnavailable", retryable=True),
                _r("r5", "step_failed", "stock", 1_600, error="gone", error_type="NotFound"))),
            ReportBatch(execution_id=e, received_at=3_100, reports=(
                _r("r5", "step_failed", "stock", 1_600, error="gone", error_type="NotFound"),)),
        ],
        "tracked_created_by_report_then_finished": [
            ReportBatch(execution_id=e, received_at=1_000, reports=(
                _r("r1", "step_succeeded", "a", 900, duration_ms=40),)),
            StartExecution(execution_id=e, received_at=1_010, command_id="c1", plan=None,
                           labels={"team": "ops"}),
            FinishExecution(execution_id=e, received_at=5_000, command_id="f1", status="stopped"),
            FinishExecution(execution_id=e, received_at=5_001, command_id="f2", status="failed"),
        ],
        "tracked_abandoned": [
            StartExecution(execution_id=e, received_at=1_000, command_id="c1"),
            Wake(execution_id=e, received_at=30_000),
            Wake(execution_id=e, received_at=61_000),
            ReportBatch(execution_id=e, received_at=70_000, reports=(
                _r("late", "step_succeeded", "a", 65_000),)),
        ],
    }


def replay(messages: list) -> tuple[list[list[dict]], dict | None]:
    state = None
    outs = []
    for m in messages:
        d = decide(state, m, CFG)
        state = d.state
        outs.append([ev.model_dump(mode="json") for ev in d.events])
    return outs, state.model_dump(mode="json") if state else None


def main() -> None:
    for name, messages in scenarios().items():
        outs, state = replay(messages)
        lines = [orjson.dumps({"kind": type(m).__name__, "in": m.model_dump(mode="json"),
                               "out": out}) for m, out in zip(messages, outs, strict=True)]
        lines.append(orjson.dumps({"state": state}))
        (HERE / f"{name}.jsonl").write_bytes(b"\n".join(lines) + b"\n")


if __name__ == "__main__":
    main()
