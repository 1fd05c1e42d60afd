"""The Execution Center's analytics in headless Chromium against the running product: the
metric cards show what the API says for a known dataset, the charts draw, the filters
narrow the executions list, the audit export downloads the right rows, a row opens its
execution, a workflow loads its plan, and switching to Chinese leaves no English label.
A screenshot of each state lands in tests/e2e/screenshots/."""

from __future__ import annotations

import csv
import io
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import shot, wait_for

pytestmark = pytest.mark.slow
TIMEOUT_MS = 30_000


@dataclass
class Dataset:
    workflow_id: str
    systems: tuple[str, str]
    executions: dict[str, str]  # execution id → final status
    labels: dict[str, dict[str, str]]


def reported(eid: str, wf: str, at: datetime, kind: str, step: str, system: str, module: str,
             data: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    return {"event_id": f"{eid}-{step}-{kind}", "execution_id": eid, "event_type": kind,
            "step_id": step, "system": system, "module": module, "workflow_id": wf,
            "timestamp": at.isoformat().replace("+00:00", "Z"), "data": data or {}}  # fmt: skip


def seed(api: httpx.Client) -> Dataset:
    """Five tracked executions of one new workflow across two new systems, reported with
    step durations: three succeed, one fails with a Timeout (its last step never starts),
    one with a Conflict; a minute apart, some labelled team=blue, the rest team=red."""
    tag = uuid.uuid4().hex[:8]
    wf, erp, wms = f"wf_ui_{tag}", f"ERP{tag[:4]}", f"WMS{tag[:4]}"
    route = [("fetch", erp, "Orders"), ("match", wms, "Stock"), ("book", wms, "Picking")]
    plan = {"id": f"plan_{tag}", "name": "UI analytics", "steps": [
        {"id": step, "system": system, "module": module, "dependsOn": [route[n - 1][0]][:n]}
        for n, (step, system, module) in enumerate(route)]}  # fmt: skip
    base = datetime.now(UTC) - timedelta(minutes=8)
    outcomes = ["succeeded", "succeeded", "failed", "succeeded", "failed"]
    errors = {2: ("match", {"error": "no answer in 30 s", "error_type": "Timeout"}),
              4: ("book", {"error": "ledger closed", "error_type": "Conflict"})}  # fmt: skip
    executions, labels, reports = {}, {}, []
    for i, outcome in enumerate(outcomes):
        eid = f"exec_ui_{tag}_{i}"
        executions[eid] = outcome
        labels[eid] = {"team": "blue" if i % 2 == 0 else "red", "suite": tag}
        r = api.post("/api/v1/executions", json={
            "mode": "tracked", "execution_id": eid, "plan": plan, "workflow_id": wf,
            "labels": labels[eid], "environment": "test"})  # fmt: skip
        assert r.status_code == 202, r.text
        at = base + timedelta(seconds=70 * i)
        for n, (step, system, module) in enumerate(route):
            took = timedelta(milliseconds=[120, 400, 250][n] + 60 * i)
            reports.append(reported(eid, wf, at, "step_started", step, system, module))
            if i in errors and errors[i][0] == step:
                reports.append(reported(eid, wf, at + took, "step_failed", step, system, module,
                                        errors[i][1]))  # fmt: skip
                break
            reports.append(reported(eid, wf, at + took, "step_succeeded", step, system, module))
            at += took
    r = api.post("/api/v1/events", json={"events": reports})
    assert r.status_code == 202, r.text

    def projected() -> bool:
        s = api.get("/api/v1/tracking/summary", params={"workflow_id": wf}).json()["data"]
        return s["runs"] == len(outcomes) and s["plans"] == 1 and s["failed_steps"] == 2

    wait_for(projected, timeout=60)
    return Dataset(wf, (erp, wms), executions, labels)


@pytest.fixture(scope="module")
def data(product) -> Dataset:
    with httpx.Client(base_url=product.base_url, timeout=30) as client:
        return seed(client)


def api_data(api: httpx.Client, path: str, params: Any = None) -> Any:
    r = api.get(f"/api/v1{path}", params=params)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def all_records(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        page = api_data(api, "/tracking/records", {**params, "limit": 1000,
                                                   **({"cursor": cursor} if cursor else {})})
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def format_ms(ms: float) -> str:
    """The page's formatMs for durations under a minute."""
    return f"{round(ms)} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def metrics_loaded(page, executions: int) -> None:
    page.wait_for_selector(f"[data-testid=card-executions][data-value='{executions}']",
                           timeout=TIMEOUT_MS)  # fmt: skip
    page.wait_for_selector("[data-testid=metrics][data-loading=false]", timeout=TIMEOUT_MS)


INK_JS = """(testid) => {
  let ink = 0;
  for (const c of document.querySelectorAll(`[data-testid=${testid}] canvas`)) {
    if (!c.width || !c.height) continue;
    const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < px.length; i += 4) if (px[i] > 0) ink += 1;
  }
  return ink;
}"""
CHARTS = ("chart-over-time", "chart-durations", "chart-slowest", "chart-errors")


def charts_drawn(page) -> dict[str, int]:
    """Each chart's canvas holds drawn (non-transparent) pixels; their counts."""
    for testid in CHARTS:
        page.wait_for_function(f"({INK_JS})('{testid}') > 2000", timeout=TIMEOUT_MS)
    return {testid: page.evaluate(INK_JS, testid) for testid in CHARTS}


def test_cards_and_charts_show_the_api_figures(page, api: httpx.Client, data: Dataset) -> None:
    wf = data.workflow_id
    page.goto(f"/ui?workflow_id={wf}")
    summary = api_data(api, "/tracking/summary", {"workflow_id": wf})
    # The known dataset, as the API reads it …
    assert (summary["total"], summary["runs"], summary["plans"], summary["systems"],
            summary["modules"], summary["failed_steps"]) == (5, 5, 1, 2, 3, 2)
    assert summary["executions"] == {"succeeded": 3, "failed": 2}
    metrics_loaded(page, summary["total"])
    # … and as the cards show it.
    cards = {key: (page.get_attribute(f"[data-testid=card-{key}]", "data-value"),
                   page.inner_text(f"[data-testid=card-{key}] .metric-value"))
             for key in ("executions", "plans", "systems", "modules", "failedSteps",
                         "crossSystem", "avgDuration", "successRate")}  # fmt: skip
    for key, field in (("executions", "total"), ("plans", "plans"), ("systems", "systems"),
                       ("modules", "modules"), ("failedSteps", "failed_steps")):  # fmt: skip
        assert cards[key] == (str(summary[field]), str(summary[field])), key
    assert float(cards["crossSystem"][0]) == summary["cross_system_ratio"] == 1.0
    assert cards["crossSystem"][1] == "100.0 %"
    assert float(cards["avgDuration"][0]) == summary["avg_duration_ms"]
    assert cards["avgDuration"][1] == format_ms(summary["avg_duration_ms"])
    rate = summary["executions"]["succeeded"] / summary["runs"]
    assert float(cards["successRate"][0]) == pytest.approx(rate)
    assert cards["successRate"][1] == f"{rate * 100:.1f} %" == "60.0 %"
    assert wf in page.inner_text("[data-testid=metrics-scope-line]")
    charts_drawn(page)
    shot(page, "analytics-01-metrics")

    # Charts follow their box when the window changes size.
    page.set_viewport_size({"width": 1200, "height": 900})
    page.wait_for_function("""() => [...document.querySelectorAll('.chart')].every(
        (b) => b.querySelector('canvas') && Math.abs(b.querySelector('canvas').width -
               b.clientWidth * devicePixelRatio) <= 1)""")
    page.set_viewport_size({"width": 1500, "height": 950})

    # One execution as the scope: its own figures.
    failed = next(e for e, s in data.executions.items() if s == "failed")
    page.goto(f"/ui?workflow_id={wf}&execution={failed}")
    page.wait_for_selector("[data-testid=status]:text-is('failed')", timeout=TIMEOUT_MS)
    page.select_option("[data-testid=metrics-scope]", "execution")
    one = api_data(api, "/tracking/summary", {"execution_id": failed})
    metrics_loaded(page, one["total"])
    assert page.get_attribute("[data-testid=card-failedSteps]", "data-value") == \
        str(one["failed_steps"]) == "1"
    assert page.inner_text("[data-testid=card-successRate] .metric-value") == "0.0 %"
    assert failed in page.inner_text("[data-testid=metrics-scope-line]")
    charts_drawn(page)
    shot(page, "analytics-02-execution-scope")

    # Dark mode: the charts are drawn again, on the dark panel.
    page.click("[data-testid=theme]")
    page.wait_for_selector("html[data-theme=dark]")
    charts_drawn(page)
    shot(page, "analytics-03-dark")
    page.click("[data-testid=theme]")


def listed(page) -> list[str]:
    return page.eval_on_selector_all("[data-testid=exec-row]", "rs => rs.map(r => r.dataset.eid)")


def list_matches_api(page, api: httpx.Client, params: list[tuple[str, str]]) -> list[str]:
    """Waits until the list shows exactly the API's first page for these filters."""
    expected = [i["execution_id"] for i in
                api_data(api, "/executions", [*params, ("limit", "20")])["items"]]
    page.wait_for_function(
        """(ids) => document.querySelector('[data-testid=executions-list]').dataset.loading
             === 'false' && JSON.stringify([...document.querySelectorAll(
             '[data-testid=exec-row]')].map(r => r.dataset.eid)) === JSON.stringify(ids)""",
        arg=expected, timeout=TIMEOUT_MS)  # fmt: skip
    assert page.get_attribute("[data-testid=exec-count]", "data-count") == str(len(expected))
    return expected


def test_filters_narrow_the_executions_list(page, api: httpx.Client, data: Dataset) -> None:
    wf = data.workflow_id
    page.goto("/ui")
    page.click("[data-testid=tab-executions]")
    page.wait_for_selector("[data-testid=executions-list][data-loading=false]")
    page.fill("[data-testid=exec-filters] input[name=workflow_id]", wf)
    page.click("[data-testid=filters-apply]")
    rows = list_matches_api(page, api, [("workflow_id", wf)])
    assert sorted(rows) == sorted(data.executions)
    assert f"workflow_id={wf}" in page.url  # a link reopens the same selection
    metrics_loaded(page, 5)
    shot(page, "analytics-04-executions")

    page.click("[data-testid=status-chip][data-status=failed]")
    rows = list_matches_api(page, api, [("workflow_id", wf), ("status", "failed")])
    assert sorted(rows) == sorted(e for e, s in data.executions.items() if s == "failed")
    assert {s for s in page.eval_on_selector_all(
        "[data-testid=exec-row]", "rs => rs.map(r => r.dataset.status)")} == {"failed"}
    metrics_loaded(page, 2)  # the cards follow the filters
    assert page.inner_text("[data-testid=card-successRate] .metric-value") == "0.0 %"

    # Labels: key=value in the form, label=key:value to the API.
    page.click("[data-testid=status-chip][data-status='']")
    page.fill("[data-testid=exec-filters] input[name=labels]", "team=blue")
    page.click("[data-testid=filters-apply]")
    rows = list_matches_api(page, api, [("workflow_id", wf), ("label", "team:blue")])
    blue = sorted(e for e, labels in data.labels.items() if labels["team"] == "blue")
    assert sorted(rows) == blue
    metrics_loaded(page, 3)
    page.fill("[data-testid=exec-filters] input[name=labels]", "team blue")
    page.click("[data-testid=filters-apply]")
    page.wait_for_selector("[data-testid=labels-problem]")
    page.fill("[data-testid=exec-filters] input[name=labels]", "")
    page.fill("[data-testid=exec-filters] input[name=system]", data.systems[0])
    page.click("[data-testid=filters-apply]")
    assert len(list_matches_api(page, api, [("workflow_id", wf),
                                            ("system", data.systems[0])])) == 5
    page.fill("[data-testid=exec-filters] input[name=system]", "no-such-system")
    page.click("[data-testid=filters-apply]")
    assert list_matches_api(page, api, [("workflow_id", wf), ("system", "no-such-system")]) == []
    page.wait_for_selector("[data-testid=exec-empty]")
    page.wait_for_selector("[data-testid=card-executions][data-value='0']")
    page.wait_for_selector("[data-testid=chart-over-time] + .chart-empty")
    page.wait_for_function(f"({INK_JS})('chart-over-time') === 0")  # no stale bars behind it
    shot(page, "analytics-05-no-match")

    # A row opens its execution in the run view.
    page.click("[data-testid=filters-reset]")
    page.wait_for_function("() => !location.search.includes('workflow_id')")
    assert page.input_value("[data-testid=exec-filters] input[name=system]") == ""
    page.fill("[data-testid=exec-filters] input[name=workflow_id]", wf)
    page.click("[data-testid=filters-apply]")
    page.wait_for_function("(wf) => location.search.includes(wf)", arg=wf)
    first = list_matches_api(page, api, [("workflow_id", wf)])[0]
    page.click(f"[data-testid=exec-row][data-eid='{first}']")
    page.wait_for_selector(f"[data-testid=execution-id]:text-is('{first}')")
    assert page.get_attribute("[data-testid=tab-run]", "aria-selected") == "true"
    status = data.executions[first]
    page.wait_for_selector("[data-testid=steps] .card >> nth=0", timeout=TIMEOUT_MS)
    page.wait_for_selector(f"[data-testid=status]:text-is('{status}')", timeout=TIMEOUT_MS)
    shot(page, "analytics-06-opened")


def test_pick_a_workflow_to_run(page, api: httpx.Client) -> None:
    wid = f"wf_pick_{uuid.uuid4().hex[:8]}"
    steps = [{"id": "first", "type": "delay", "system": "ERP", "config": {"seconds": 0.1}},
             {"id": "second", "type": "delay", "dependsOn": ["first"], "config": {"seconds": 0.1}}]
    r = api.post("/api/v1/workflows", json={"id": wid, "name": f"Pick me {wid}",
                                            "tags": ["ui"], "steps": steps})  # fmt: skip
    assert r.status_code == 201, r.text
    page.goto("/ui?tab=workflows")
    page.fill("[data-testid=workflow-search]", wid)
    page.press("[data-testid=workflow-search]", "Enter")
    row = page.wait_for_selector(f"[data-testid=workflow-row][data-workflow='{wid}']")
    assert page.locator("[data-testid=workflow-row]").count() == 1
    assert "Pick me" in row.inner_text()
    shot(page, "analytics-07-workflows")
    page.click(f"[data-testid=workflow-row][data-workflow='{wid}'] [data-testid=workflow-load]")
    page.wait_for_selector("[data-testid=plan-valid]")
    assert page.inner_text("[data-testid=summary-steps]") == "2"
    assert '"second"' in page.input_value("[data-testid=plan-json]")
    assert page.is_enabled("[data-testid=run]")
    # and its executions
    page.click("[data-testid=tab-workflows]")
    page.click(f"[data-testid=workflow-row][data-workflow='{wid}'] "
               "[data-testid=workflow-executions]")  # fmt: skip
    page.wait_for_selector("[data-testid=exec-empty]")
    assert page.input_value("[data-testid=exec-filters] input[name=workflow_id]") == wid


def download_csv(page) -> tuple[str, list[dict[str, str]]]:
    with page.expect_download(timeout=TIMEOUT_MS) as d:
        page.click("[data-testid=export-submit]")
    download = d.value
    with open(download.path(), newline="") as f:
        rows = list(csv.DictReader(io.StringIO(f.read())))
    done = page.wait_for_selector("[data-testid=export-done]")
    assert done.get_attribute("data-rows") == str(len(rows))  # the count the API reported
    return download.suggested_filename, rows


def keys(rows: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return sorted((r["execution_id"], r["step_id"], int(r["attempt"])) for r in rows)


def test_export_downloads_the_filtered_rows(page, api: httpx.Client, data: Dataset) -> None:
    wf = data.workflow_id
    page.goto(f"/ui?workflow_id={wf}")
    page.click("[data-testid=export]")
    page.wait_for_selector("[data-testid=export-drawer]")
    assert page.input_value("[data-testid=export-drawer] input[name=workflow_id]") == wf
    name, rows = download_csv(page)
    expected = all_records(api, workflow_id=wf)
    assert len(expected) == 14  # 5 executions × 3 steps, but one never started its last
    assert keys(rows) == keys(expected)
    assert re.fullmatch(rf"runledger-records-.*{wf}.*-\d{{8}}T\d{{6}}Z\.csv", name), name
    assert name in page.inner_text("[data-testid=export-done]")
    shot(page, "analytics-08-export")

    # By labels, when the API filters by them; else its answer names the field.
    page.fill("[data-testid=export-drawer] input[name=labels]", "team=blue")
    probe = api.post("/api/v1/tracking/export", json={
        "format": "csv", "filters": {"workflow_id": wf, "labels": {"team": "blue"}}})
    if probe.status_code == 200:
        name, rows = download_csv(page)
        blue = {e for e, labels in data.labels.items() if labels["team"] == "blue"}
        assert keys(rows) == keys([r for r in expected if r["execution_id"] in blue])
    else:
        assert probe.status_code == 422, probe.text
        page.click("[data-testid=export-submit]")
        problem = page.wait_for_selector("[data-testid=problem][data-category=validation]")
        assert "labels" in problem.inner_text()
        page.click("[data-testid=problem] button")

    # One execution: the file name holds its id and the time.
    eid = sorted(data.executions)[2]
    page.goto(f"/ui?execution={eid}")
    page.wait_for_selector(f"[data-testid=execution-id]:text-is('{eid}')")
    page.click("[data-testid=export]")
    assert page.input_value("[data-testid=export-drawer] select[name=scope]") == "execution"
    name, rows = download_csv(page)
    assert re.fullmatch(rf"runledger-records-{eid}-\d{{8}}T\d{{6}}Z\.csv", name), name
    assert keys(rows) == keys(all_records(api, execution_id=eid))
    shot(page, "analytics-09-export-execution")


VISIBLE_TEXT_JS = """async () => {
  const { messages } = await import('/ui/app/messages.js');
  const flat = (o) => Object.values(o).flatMap((v) => (typeof v === 'object' ? flat(v) : [v]));
  const RAW = '.raw, code, pre, textarea, .eid';
  const out = [];
  const seen = (el) => el.checkVisibility({ visibilityProperty: true, opacityProperty: false });
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.nodeValue.trim();
    const el = n.parentElement;
    if (!text || !el || el.closest('option, script, style') || !seen(el)) continue;
    out.push({ text, raw: Boolean(el.closest(RAW)) });
  }
  for (const el of document.querySelectorAll('[placeholder], [title], [aria-label]')) {
    if (!seen(el)) continue;
    for (const a of ['placeholder', 'title', 'aria-label']) {
      const v = el.getAttribute(a);
      if (v) out.push({ text: v, raw: Boolean(el.closest(RAW)) });
    }
  }
  for (const s of document.querySelectorAll('select')) {
    const o = s.selectedOptions[0];
    if (o && seen(s)) out.push({ text: o.text.trim(), raw: o.classList.contains('raw') });
  }
  out.push({ text: document.title.replace('Runledger', ''), raw: false });
  return { texts: out, en: flat(messages.en), zh: flat(messages.zh) };
}"""
# Words of data, not of the page: ids (with digits or _), formats, percentiles.
NOT_LABELS = re.compile(r"[A-Za-z0-9.:\-]*[0-9_][A-Za-z0-9_.:\-]*|\b(JSON|CSV|ID|ms|s)\b")


def english_labels(texts: list[dict[str, Any]], en: list[str], zh: list[str]) -> set[str]:
    """The English strings of messages.js (those Chinese does not share) visible as labels."""
    found = set()
    for label in set(en) - set(zh):
        parts = [re.escape(p) for p in re.split(r"\{\w+\}", label) if p.strip()]
        if not parts:
            continue
        pattern = re.compile(r"(?<![A-Za-z])" + ".+?".join(parts) + r"(?![A-Za-z])")
        if any(not t["raw"] and pattern.search(t["text"]) for t in texts):
            found.add(label)
    return found


def latin_words(texts: list[dict[str, Any]]) -> set[str]:
    """Words of three Latin letters or more outside data: a hard-coded English string."""
    return {f"{w!r} in {t['text']!r}" for t in texts if not t["raw"]
            for w in re.findall(r"[A-Za-z]{3,}", NOT_LABELS.sub(" ", t["text"]))}


def check_language(page, state: str) -> int:
    """In English the state shows labels of messages.en; in Chinese none of them, nor any
    other English word outside data. Returns how many English labels it checked."""
    page.select_option("[data-testid=language]", "en")
    page.wait_for_timeout(300)
    before = page.evaluate(VISIBLE_TEXT_JS)
    shown = english_labels(before["texts"], before["en"], before["zh"])
    assert len(shown) >= 8, f"{state}: the page shows too few labels: {shown}"
    page.select_option("[data-testid=language]", "zh")
    page.wait_for_timeout(300)
    after = page.evaluate(VISIBLE_TEXT_JS)
    left = english_labels(after["texts"], after["en"], after["zh"])
    assert not left, f"{state}: English labels still visible in Chinese: {left}"
    words = latin_words(after["texts"])
    assert not words, f"{state}: English words outside data in Chinese: {words}"
    return len(shown)


BOXES_OF = ".columns > *, .tabs, .metric, .chart-box"
# Boxes within the three columns (the toolbar above may wrap with longer words).
BOXES_JS = """bs => { const c = document.querySelector('.columns').getBoundingClientRect();
  return bs.map(b => { const r = b.getBoundingClientRect();
                       return [r.x - c.x, r.y - c.y, r.width, r.height]; }); }"""


def test_switching_language_changes_every_label(page, api: httpx.Client, data: Dataset) -> None:
    wf = data.workflow_id
    failed = next(e for e, s in data.executions.items() if s == "failed")
    page.goto(f"/ui?workflow_id={wf}&execution={failed}")
    page.wait_for_selector("[data-testid=status]:text-is('failed')", timeout=TIMEOUT_MS)
    metrics_loaded(page, 5)
    en_keys, zh_keys = page.evaluate("""async () => {
      const { messages } = await import('/ui/app/messages.js');
      const keys = (o, p = '') => Object.entries(o).flatMap(([k, v]) =>
        (typeof v === 'object' ? keys(v, `${p}${k}.`) : [`${p}${k}`]));
      return [keys(messages.en).sort(), keys(messages.zh).sort()];
    }""")
    assert en_keys == zh_keys  # every string in both languages
    page.select_option("[data-testid=language]", "en")
    boxes = page.eval_on_selector_all(BOXES_OF, BOXES_JS)
    checked = check_language(page, "run view")
    shot(page, "analytics-10-zh-run")
    page.select_option("[data-testid=language]", "en")
    page.click("[data-testid=tab-executions]")
    page.wait_for_selector("[data-testid=exec-row]")
    checked += check_language(page, "executions")
    shot(page, "analytics-11-zh-executions")
    page.select_option("[data-testid=language]", "en")
    page.click("[data-testid=tab-workflows]")
    page.wait_for_selector("[data-testid=workflows-list][data-loading=false]")
    checked += check_language(page, "workflows")
    page.select_option("[data-testid=language]", "en")
    page.click("[data-testid=theme]")  # and dark
    page.click("[data-testid=export]")
    page.select_option("[data-testid=export-drawer] select[name=scope]", "filters")
    checked += check_language(page, "export drawer")
    shot(page, "analytics-12-zh-dark-export")
    assert checked >= 40
    # Nothing moved with the language (nor the theme): the same boxes as in English.
    page.click("[data-testid=export-drawer] button[type=button]")
    page.click("[data-testid=tab-run]")
    assert page.eval_on_selector_all(BOXES_OF, BOXES_JS) == boxes
