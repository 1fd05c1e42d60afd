"""Record scenario histories as JSONL (run by hand when the machine learns something new).

    python -m tests.histories.record          # records the scenarios not recorded yet
    python -m tests.histories.record --force  # records every one again (changes meaning!)

Each line is one input message with the events decide() emitted for it; the last line
is the final state. tests/unit/test_replay.py replays them against today's code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

from streams.contracts import (
    ChildFinished,
    ControlCommand,
    FinishExecution,
    Rehydrate,
    Report,
    ReportBatch,
    StartExecution,
    StopExecution,
    TaskUpdate,
    Wake,
)
from streams.machine import MachineConfig, decide
from streams.plan import Plan

HERE = Path(__file__).parent
CFG = MachineConfig(tracked_idle_timeout_ms=60_000)
PLAN = Plan.model_validate({"id": "recon", "name": "跨系统对账", "steps": [
    {"id": "fetch", "system": "ERP", "module": "Orders"},
    {"id": "stock", "dependsOn": ["fetch"], "system": "WMS", "module": "Stock"},
    {"id": "post", "dependsOn": ["stock"], "system": "FIN", "module": "Ledger"},
]})  # fmt: skip


ORCHESTRATED = Plan.model_validate({"id": "orch", "steps": [
    {"id": "fetch", "type": "api_call", "system": "ERP",
     "config": {"url": "http://erp/orders?d={{ input.date }}", "output_mapping": {"n": "data.n"}},
     "retry": {"max_retries": 2, "initial_delay": 1}},
    {"id": "check", "type": "condition", "dependsOn": ["fetch"],
     "config": {"expression": "fetch.n > 0", "true_path": ["wait"], "false_path": ["none"]}},
    {"id": "none", "type": "transform", "dependsOn": ["check"], "config": {"mapping": {"a": "1"}}},
    {"id": "wait", "type": "delay", "dependsOn": ["check"], "config": {"seconds": 2}},
    {"id": "post", "type": "api_call", "dependsOn": ["wait"], "config": {"url": "http://fin"}},
]})  # fmt: skip


CONTROLLED = Plan.model_validate({"id": "ctl", "steps": [
    {"id": "load", "type": "api_call", "system": "ERP", "config": {"url": "http://erp/load"}},
    {"id": "approve", "type": "wait_input", "dependsOn": ["load"]},
    {"id": "book", "type": "api_call", "dependsOn": ["approve"], "system": "FIN",
     "config": {"url": "http://fin/book"}},
]})  # fmt: skip


COMPOSITE = Plan.model_validate({"id": "comp", "steps": [
    {"id": "fan", "type": "parallel", "config": {"branches": ["a", "b"], "max_concurrent": 1}},
    {"id": "a", "type": "api_call", "config": {"url": "http://a"}},
    {"id": "b", "type": "transform", "config": {"mapping": {"x": "{{ a.n }}"}}},
    {"id": "each", "type": "loop", "dependsOn": ["fan"],
     "config": {"items": "{{ input.ids }}", "body": ["get"]}},
    {"id": "get", "type": "api_call", "config": {"url": "http://g/{{ loop.item }}"}},
    {"id": "sub", "type": "sub_execution", "dependsOn": ["each"],
     "config": {"plan": {"steps": [{"id": "k", "type": "api_call",
                                    "config": {"url": "http://k"}}]}}},
]})  # fmt: skip


def _c(cid: str, action: str, at: int, **kw: object) -> ControlCommand:
    return ControlCommand(execution_id="exec_hist", received_at=at, command_id=cid,
                          action=action, **kw)  # type: ignore[arg-type]


def _t(step: str, attempt: int, phase: str, at: int, **kw: object) -> TaskUpdate:
    return TaskUpdate(execution_id="exec_hist", received_at=at, task_id=f"exec_hist/{step}/"
                      f"{attempt}", step_id=step, attempt=attempt, phase=phase, **kw)  # type: ignore[arg-type]


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
        "orchestrated_retry_branch_delay_stop": [
            StartExecution(execution_id=e, received_at=1_000, command_id="c1",
                           mode="orchestrated", plan=ORCHESTRATED, inputs={"date": "d1"}),
            _t("fetch", 1, "started", 1_010),
            _t("fetch", 1, "failed", 1_050, error="HTTP 503", error_type="ServiceUnavailable",
               retryable=True),
            Wake(execution_id=e, received_at=3_000),
            _t("fetch", 2, "started", 3_010),
            _t("fetch", 2, "succeeded", 3_020, output={"status": 200, "n": 2}),
            _t("fetch", 2, "succeeded", 3_030, output={"status": 200, "n": 9}),
            Wake(execution_id=e, received_at=5_100),
            _t("post", 1, "started", 5_200),
            StopExecution(execution_id=e, received_at=5_300, command_id="s1"),
            _t("post", 1, "succeeded", 5_400, output={}),
        ],
        "orchestrated_control": [
            StartExecution(execution_id=e, received_at=1_000, command_id="c1",
                           mode="orchestrated", plan=CONTROLLED),
            _c("p1", "pause", 1_005),
            _t("load", 1, "started", 1_010),
            _t("load", 1, "succeeded", 1_050, output={"rows": 3}),
            _c("p2", "resume", 2_000),
            _c("i0", "input", 2_050, step_id="book", data={"ok": True}),  # not waiting: refused
            _c("i1", "input", 2_100, step_id="approve", data={"approved": True}),
            _t("book", 1, "started", 2_200),
            _t("book", 1, "failed", 2_300, error="HTTP 409", error_type="Conflict"),
            _c("r1", "retry", 3_000),
            _t("book", 2, "started", 3_010),
            _t("book", 2, "succeeded", 3_050, output={"booked": 1}),
            _c("r2", "rerun", 4_000, step_id="book", inputs={"note": "again"}),
            _t("book", 3, "started", 4_010),
            _t("book", 3, "succeeded", 4_020, output={"booked": 2}),
            Rehydrate(execution_id=e, received_at=5_000, state={"execution_id": e}),
        ],
        "orchestrated_composite": [
            StartExecution(execution_id=e, received_at=1_000, command_id="c1",
                           mode="orchestrated", plan=COMPOSITE, inputs={"ids": ["p", "q"]}),
            _t("a", 1, "succeeded", 1_100, output={"n": 4}),
            _t("get[0]", 1, "succeeded", 1_200, output={"v": 1}),
            _c("p1", "pause", 1_250),
            _t("get[1]", 1, "failed", 1_300, error="HTTP 500", error_type="HttpError"),
            _c("r1", "retry", 1_400),
            _c("p2", "resume", 1_410),
            _t("get[1]", 2, "succeeded", 1_500, output={"v": 2}),
            ChildFinished(execution_id=e, received_at=1_600, child_id="exec_hist.sub.1",
                          step_id="sub", child_seq=4, status="failed", error_type="HttpError"),
            _c("r2", "retry", 1_700),
            ChildFinished(execution_id=e, received_at=1_800, child_id="exec_hist.sub.1",
                          step_id="sub", child_seq=9, status="succeeded",
                          output={"outputs": {"k": {"ok": True}}}),
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
    force = "--force" in sys.argv
    for name, messages in scenarios().items():
        if (HERE / f"{name}.jsonl").exists() and not force:
            continue
        outs, state = replay(messages)
        lines = [orjson.dumps({"kind": type(m).__name__, "in": m.model_dump(mode="json"),
                               "out": out}) for m, out in zip(messages, outs, strict=True)]
        lines.append(orjson.dumps({"state": state}))
        (HERE / f"{name}.jsonl").write_bytes(b"\n".join(lines) + b"\n")


if __name__ == "__main__":
    main()
