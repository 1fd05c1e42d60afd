"""The Execution Center page in headless Chromium against the running product: run a plan
from the dialog, steer it from the toolbar, lose the socket mid-run, answer a wait_input
form, step through a debug run, retry only the failed step. A screenshot of each main
state lands in tests/e2e/screenshots/."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Product, launch, shot
from tests.e2e.plans import detail, finished

pytestmark = pytest.mark.slow
TIMEOUT_MS = 30_000


def plan_of(steps: list[dict[str, Any]], pid: str = "p_ui") -> str:
    return json.dumps({"id": pid, "name": "Execution Center test", "steps": steps})


def delays(ids: list[str], seconds: float) -> list[dict[str, Any]]:
    steps = []
    for i, sid in enumerate(ids):
        steps.append({"id": sid, "type": "delay", "system": "ERP", "module": "Orders",
                      "dependsOn": ids[i - 1:i], "config": {"seconds": seconds}})  # fmt: skip
    return steps


def open_page(page) -> None:
    page.goto("/ui")
    page.wait_for_selector("[data-testid=plan-json]")


def load_plan(page, plan: str) -> None:
    page.fill("[data-testid=plan-json]", plan)
    page.click("[data-testid=validate]")
    page.wait_for_selector("[data-testid=plan-valid]")


def run(page, inputs: dict[str, str] | None = None, debug: bool = False) -> str:
    """Run the loaded plan through the execute dialog; the execution id the page follows."""
    page.click("[data-testid=debug]" if debug else "[data-testid=run]")
    for name, value in (inputs or {}).items():
        page.fill(f"[data-testid=input-{name}]", value)
    page.click("[data-testid=execute-submit]")
    page.wait_for_selector("[data-testid=execution-id]")
    return page.inner_text("[data-testid=execution-id]")


def status_is(page, status: str) -> None:
    page.wait_for_selector(f"[data-testid=status]:text-is('{status}')", timeout=TIMEOUT_MS)


def seqs(page) -> list[int]:
    return [int(s) for s in page.eval_on_selector_all(
        "[data-testid=timeline] li[data-seq]", "els => els.map(e => e.dataset.seq)")]


def test_run_a_plan_from_the_dialog_and_watch_it_finish(page, api: httpx.Client) -> None:
    open_page(page)
    # Validation points at the step that is wrong.
    broken = [{"id": "greet", "type": "transform", "dependsOn": ["nowhere"],
               "config": {"mapping": {"hi": "{{ input.name }}"}}}]  # fmt: skip
    page.fill("[data-testid=plan-json]", plan_of(broken))
    page.click("[data-testid=validate]")
    problems = page.wait_for_selector("[data-testid=plan-problems]")
    assert "greet" in problems.inner_text() and "nowhere" in problems.inner_text()
    assert page.is_visible("[data-testid=problem][data-category=validation]") is False
    shot(page, "run-01-plan-invalid")

    steps = [*delays(["fetch"], 0.5),
             {"id": "greet", "type": "transform", "system": "Finance", "module": "Ledger",
              "dependsOn": ["fetch"], "inputsSpec": {"name": "string"},
              "config": {"mapping": {"hi": "hello {{ input.name }}"}}}]  # fmt: skip
    load_plan(page, plan_of(steps))
    summary = page.inner_text("[data-testid=plan-summary]")
    assert "ERP" in summary and "Finance" in summary
    assert page.inner_text("[data-testid=summary-steps]") == "2"
    assert "name" in page.inner_text("[data-testid=required-inputs]")

    # The dialog checks timeoutSec and the inputs before it closes.
    page.click("[data-testid=run]")
    page.fill("input[name=timeoutSec]", "10")
    page.click("[data-testid=execute-submit]")
    assert "timeoutSec" in page.inner_text("[data-testid=execute-problems]")
    page.fill("input[name=timeoutSec]", "120")
    page.click("[data-testid=execute-submit]")
    page.wait_for_selector("[data-testid=execute-problems]:has-text('name')")
    shot(page, "run-02-dialog-problems")
    page.fill("[data-testid=input-name]", "Ada")
    page.click("[data-testid=execute-submit]")

    eid = page.wait_for_selector("[data-testid=execution-id]").inner_text()
    status_is(page, "succeeded")
    page.wait_for_selector("[data-testid=timeline] li[data-type=execution_completed]")
    assert detail(api, eid)["status"] == "succeeded"
    assert page.get_attribute("[data-testid=steps] [data-step=greet]", "data-status") == "succeeded"
    # Clicking an event selects its step card and its log lines.
    page.click("[data-testid=timeline] li[data-type=step_succeeded] >> nth=-1")
    assert "selected" in page.get_attribute("[data-step=greet].card", "class")
    assert page.locator("[data-testid=log-lines] .line.selected").count() >= 1
    assert seqs(page) == sorted(set(seqs(page)))
    shot(page, "run-03-finished")


def test_pause_resume_and_stop_from_the_toolbar(page, api: httpx.Client) -> None:
    open_page(page)
    load_plan(page, plan_of(delays(["one", "two", "three", "four"], 1.5)))
    eid = run(page)
    page.wait_for_selector("[data-testid=timeline] li[data-type=step_started]")
    page.click("[data-testid=pause]")
    status_is(page, "paused")
    assert page.is_disabled("[data-testid=pause]") and page.is_enabled("[data-testid=resume]")
    shot(page, "run-04-paused")
    page.click("[data-testid=resume]")
    status_is(page, "running")
    page.click("[data-testid=stop]")
    status_is(page, "stopped")
    notice = page.wait_for_selector("[data-testid=stopped-notice]").inner_text()
    stopped_at = detail(api, eid)["stopped_at_steps"]
    assert stopped_at and f"Stopped at step {stopped_at[0]}" in notice
    for button in ("stop", "pause", "resume"):
        assert page.is_disabled(f"[data-testid={button}]"), button
    assert page.is_enabled("[data-testid=run]")
    page.wait_for_selector("[data-testid=light][data-state=closed]")
    timer = page.inner_text("[data-testid=timer]")
    page.wait_for_timeout(1200)
    assert page.inner_text("[data-testid=timer]") == timer  # the clock stopped with it
    shot(page, "run-05-stopped")


def test_a_lost_socket_reconnects_without_duplicate_events(page, api: httpx.Client) -> None:
    sockets: list[Any] = []

    def through(ws) -> None:  # the page's sockets pass through here, so the test can cut them
        server = ws.connect_to_server()
        sockets.append((ws, server))

    page.route_web_socket(re.compile(r".*/ws/v1/executions/.*"), through)
    open_page(page)
    load_plan(page, plan_of(delays([f"s{i}" for i in range(6)], 0.6)))
    eid = run(page)
    page.wait_for_selector("[data-testid=timeline] li[data-type=step_succeeded]")
    ws, server = sockets[-1]
    server.close()
    ws.close(code=1011, reason="cut by the test")
    for _ in range(75):  # it comes back by itself (Playwright calls let the route run)
        if len(sockets) >= 2:
            break
        page.wait_for_timeout(200)
    assert len(sockets) >= 2
    status_is(page, "succeeded")
    last = detail(api, eid)["last_seq"]
    page.wait_for_selector(f"[data-testid=timeline] li[data-seq='{last}']")
    assert seqs(page) == list(range(1, last + 1))  # every event once, none twice
    shot(page, "run-06-reconnected")


def test_without_a_socket_it_polls(page, api: httpx.Client) -> None:
    page.route_web_socket(re.compile(r".*/ws/v1/executions/.*"), lambda ws: ws.close())
    open_page(page)
    load_plan(page, plan_of(delays(["a", "b", "c"], 0.8)))
    eid = run(page)
    page.wait_for_selector("[data-testid=light][data-state=polling]", timeout=TIMEOUT_MS)
    shot(page, "run-07-polling")
    status_is(page, "succeeded")
    last = detail(api, eid)["last_seq"]
    page.wait_for_selector(f"[data-testid=timeline] li[data-seq='{last}']")
    assert seqs(page) == list(range(1, last + 1))


def test_answer_a_wait_input_form(page, api: httpx.Client) -> None:
    schema = {"type": "object", "required": ["approved", "reviewer"],
              "properties": {"approved": {"type": "boolean"}, "reviewer": {"type": "string"},
                             "amount": {"type": "integer"}}}  # fmt: skip
    steps = [{"id": "ask", "type": "wait_input",
              "config": {"prompt": "Approve the transfer?", "input_schema": schema}},
             {"id": "after", "type": "transform", "dependsOn": ["ask"],
              "config": {"mapping": {"who": "{{ ask.reviewer }}"}}}]  # fmt: skip
    open_page(page)
    load_plan(page, plan_of(steps))
    eid = run(page)
    form = page.wait_for_selector("[data-testid=input-form][data-step=ask]", timeout=TIMEOUT_MS)
    assert "Approve the transfer?" in form.inner_text()
    shot(page, "run-08-input-form")
    page.check("[data-testid=input-form] input[name=approved]")
    page.fill("[data-testid=input-form] input[name=amount]", "250")
    page.click("[data-testid=input-submit]")  # reviewer is missing: the API says so
    page.wait_for_selector("[data-testid=input-form] .problems")
    page.fill("[data-testid=input-form] input[name=reviewer]", "grace")
    page.click("[data-testid=input-submit]")
    status_is(page, "succeeded")
    outputs = {s["step_id"]: s["output"] for s in detail(api, eid)["steps"]}
    assert outputs["ask"] == {"approved": True, "reviewer": "grace", "amount": 250}
    assert outputs["after"] == {"who": "grace"}
    assert page.locator("[data-testid=input-form]").count() == 0


def test_step_through_a_debug_run(page, api: httpx.Client) -> None:
    steps = [{"id": "first", "type": "transform", "inputsSpec": {"name": "string"},
              "config": {"mapping": {"upper": "{{ input.name | upper }}"}}},
             {"id": "second", "type": "transform", "dependsOn": ["first"],
              "config": {"mapping": {"again": "{{ first.upper }}!"}}}]  # fmt: skip
    open_page(page)
    load_plan(page, plan_of(steps))
    eid = run(page, {"name": "ada"}, debug=True)
    page.wait_for_selector("[data-testid=debug-next]:text-is('first')", timeout=TIMEOUT_MS)
    shot(page, "run-09-debug-first")
    page.click("[data-testid=debug-continue]")
    page.wait_for_selector("[data-testid=debug-next]:text-is('second')", timeout=TIMEOUT_MS)
    assert "ADA" in page.inner_text("[data-testid=debug-context]")  # resolved, not a template
    shot(page, "run-10-debug-second")
    page.click("[data-testid=debug-continue]")
    status_is(page, "succeeded")
    assert detail(api, eid)["steps"][1]["output"] == {"again": "ADA!"}
    # Rerun a step of the finished debug run: it pauses before that step again.
    page.click("[data-step=second].card [data-testid=rerun-step]")
    page.wait_for_selector("[data-testid=debug-next]:text-is('second')", timeout=TIMEOUT_MS)
    page.click("[data-testid=debug-continue]")
    status_is(page, "succeeded")
    second = detail(api, eid)["steps"][1]
    assert second["attempts"] == 2 and second["output"] == {"again": "ADA!"}


def test_retry_runs_only_the_failed_step(page, api: httpx.Client, service) -> None:
    open_page(page)
    plan = json.dumps({"id": "p_retry", "steps": [
        {"id": "fetch", "type": "api_call", "system": "ERP",
         "config": {"url": service.base_url + "/json/ui/{{ execution.id }}"}},
        {"id": "post", "type": "api_call", "system": "Finance", "dependsOn": ["fetch"],
         "config": {"url": service.base_url + "/flaky/ui/{{ execution.id }}"},
         "retry": {"max_retries": 0}}]})  # fmt: skip
    load_plan(page, plan)
    eid = run(page)
    status_is(page, "failed")
    page.wait_for_selector("[data-testid=failed-notice]")
    assert page.get_attribute("[data-step=post].card", "data-status") == "failed"
    shot(page, "run-11-failed")
    page.click("[data-testid=retry]")  # the flaky service fails once more, then answers
    page.wait_for_selector("[data-testid=timeline] li[data-type=execution_completed] >> nth=1",
                           timeout=TIMEOUT_MS)  # fmt: skip
    status_is(page, "failed")
    page.click("[data-testid=retry]")
    status_is(page, "succeeded")
    assert finished(api, eid)["status"] == "succeeded"
    assert service.count(f"/json/ui/{eid}") == 1  # the step that had succeeded ran once
    assert service.count(f"/flaky/ui/{eid}") == 3
    assert seqs(page) == sorted(set(seqs(page)))
    shot(page, "run-12-retried")


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    keys = {"ui-view-key": {"role": "viewer"}, "ui-op-key": {"role": "operator"}}
    p = launch(tmp_path_factory.mktemp("ui-keyed"), RUNLEDGER_API_KEYS=json.dumps(keys))
    try:
        p.wait_ready()
        yield p
    finally:
        p.stop()


def test_errors_are_shown_by_category_and_a_key_is_asked_for(chromium, keyed: Product) -> None:
    context = chromium.new_context(viewport={"width": 1500, "height": 950},
                                   base_url=keyed.base_url)  # fmt: skip
    page = context.new_page()
    try:
        open_page(page)  # the page itself needs no key; its first API call gets a 401
        page.wait_for_selector("[data-testid=key-dialog]")
        assert page.get_attribute("[data-testid=problem]", "data-category") == "permission"
        assert "Permission error" in page.inner_text("[data-testid=problem]")
        shot(page, "run-13-key-asked")
        page.fill("[data-testid=key-dialog] input[name=api-key]", "ui-view-key")
        page.click("[data-testid=key-dialog] button[type=submit]")
        page.wait_for_selector("[data-testid=problem]", state="detached")
        # Everything that was refused is read again with the key, the metrics included.
        page.wait_for_selector("[data-testid=metrics-problem]", state="detached")
        page.wait_for_selector("[data-testid=metrics][data-loading=false]")
        load_plan(page, plan_of(delays(["only"], 0.1)))  # a viewer may validate
        page.click("[data-testid=run]")
        page.click("[data-testid=execute-submit]")  # … but not start: 403, by category
        page.wait_for_selector("[data-testid=problem][data-category=permission]")
        assert "operator" in page.inner_text("[data-testid=problem]")
        page.route("**/api/v1/plans/validate", lambda route: route.abort())
        page.click("[data-testid=validate]")
        page.wait_for_selector("[data-testid=problem][data-category=network]")
        assert "Network error" in page.inner_text("[data-testid=problem]")
        shot(page, "run-14-network-error")
    finally:
        context.close()


def test_every_string_has_both_languages(page) -> None:
    open_page(page)
    missing = page.evaluate("""async () => {
        const { messages } = await import("/ui/app/messages.js");
        const keys = (o, p = "") => Object.entries(o).flatMap(([k, v]) =>
            typeof v === "object" ? keys(v, `${p}${k}.`) : [`${p}${k}`]);
        const en = new Set(keys(messages.en)), zh = new Set(keys(messages.zh));
        return [[...en].filter((k) => !zh.has(k)), [...zh].filter((k) => !en.has(k))];
    }""")
    assert missing == [[], []]
