// Center column, "Executions" tab: the filters (shared with the metrics and the export),
// status chips, and the matching executions newest first, a page at a time by cursor;
// a row opens its execution in the run view.

import { query } from "../api.js";
import { EMPTY_FILTERS, filterParams, isoOf, localTime, parseLabels, STATUSES } from "../filters.js";
import { t } from "../i18n.js";
import { html, useEffect, useState } from "../lib.js";
import { formatMs } from "../model.js";
import { usePage } from "../paging.js";

const PAGE = 20;
const TEXT_FIELDS = ["execution_id", "workflow_id", "system", "module", "labels"];

// A draft of the filters until Apply (or Enter); keyed by the applied filters, so a change
// from elsewhere (a chip, Reset, a workflow picked) starts a fresh draft.
export function FilterForm({ filters, onApply }) {
  const [draft, setDraft] = useState(filters);
  const [bad, setBad] = useState([]);
  const [wrongWindow, setWrongWindow] = useState(false);
  const set = (field) => (e) => setDraft({ ...draft, [field]: e.target.value });
  const submit = (e) => {
    e.preventDefault();
    const found = parseLabels(draft.labels).bad;
    const backwards = Boolean(draft.from && draft.to && isoOf(draft.from) > isoOf(draft.to));
    setBad(found);
    setWrongWindow(backwards);
    if (!found.length && !backwards) onApply({ ...draft, status: filters.status });
  };
  return html`
    <form class="filter-form" data-testid="exec-filters" onSubmit=${submit}>
      ${TEXT_FIELDS.map((field) => html`
        <label>${t(`field.${field}`)}
          <input name=${field} value=${draft[field]} onInput=${set(field)} autocomplete="off"
                 placeholder=${field === "labels" ? t("labelsHint") : ""} /></label>`)}
      <label>${t("from")}<input name="from" type="datetime-local" value=${draft.from}
                                onInput=${set("from")} /></label>
      <label>${t("to")}<input name="to" type="datetime-local" value=${draft.to}
                              onInput=${set("to")} /></label>
      <div class="filter-actions">
        <button type="submit" data-testid="filters-apply">${t("apply")}</button>
        <button type="button" data-testid="filters-reset"
                onClick=${() => onApply({ ...EMPTY_FILTERS })}>${t("reset")}</button>
      </div>
      ${bad.length > 0 && html`<p class="error filter-problem" data-testid="labels-problem">
        ${t("badLabels", { items: bad.join(", ") })}</p>`}
      ${wrongWindow && html`<p class="error filter-problem" data-testid="window-problem">
        ${t("fromAfterTo")}</p>`}
    </form>`;
}

export function StatusChips({ status, onPick }) {
  return html`
    <div class="chips" role="group" aria-label=${t("field.status")} data-testid="status-chips">
      ${["", ...STATUSES].map((s) => html`
        <button type="button" data-testid="status-chip" data-status=${s}
                class=${`chip-button${s ? ` status-${s}` : ""}${s === status ? " active" : ""}`}
                aria-pressed=${s === status} onClick=${() => onPick(s)}>
          ${s ? t(`status.${s}`) : t("allStatuses")}</button>`)}
    </div>`;
}

function Labels({ item }) {
  const labels = Object.entries(item.labels || {});
  return html`
    ${(item.systems || []).map((s) => html`<span class="tag raw">${s}</span>`)}
    ${labels.map(([k, v]) => html`<span class="tag label raw">${k}=${v}</span>`)}`;
}

function Row({ item, onOpen }) {
  const counts = item.step_counts || {};
  return html`
    <tr data-testid="exec-row" data-eid=${item.execution_id} data-status=${item.status}
        tabindex="0" onClick=${() => onOpen(item.execution_id)}
        onKeyDown=${(e) => e.key === "Enter" && onOpen(item.execution_id)}>
      <td><span class=${`badge status-${item.status}`}>${t(`status.${item.status}`)}</span></td>
      <td><code title=${item.execution_id}>${item.execution_id}</code></td>
      <td><span class="raw" title=${item.workflow_id || ""}>${item.workflow_id || "–"}</span></td>
      <td class="num">${localTime(item.started_at)}</td>
      <td class="num">${formatMs(item.duration_ms)}</td>
      <td class="num" title=${t("stepCounts")}>${counts.succeeded ?? 0}/${counts.total ?? 0}
        ${counts.failed ? html` <span class="error">✖${counts.failed}</span>` : ""}</td>
      <td class="tags"><${Labels} item=${item} /></td>
    </tr>`;
}

export function ExecutionsList({ filters, onFilters, onOpen, onProblem, version }) {
  const [cursors, setCursors] = useState([null]); // cursors[i] opens page i
  const key = JSON.stringify(filters);
  const at = cursors.length - 1;
  useEffect(() => { setCursors((c) => (c.length === 1 ? c : [null])); }, [key]);
  const page = usePage(`/executions${query({ ...filterParams(filters), limit: PAGE, cursor: cursors[at] })}`,
                       [key, cursors, version], onProblem);
  return html`
    <section class="panel executions" data-testid="executions-list"
             data-loading=${page.loading ? "true" : "false"}>
      <h2>🗂 ${t("tabs.executions")}</h2>
      <${FilterForm} key=${key} filters=${filters} onApply=${onFilters} />
      <${StatusChips} status=${filters.status} onPick=${(s) => onFilters({ ...filters, status: s })} />
      <div class="table-box">
        <table class="exec-table">
          <colgroup><col class="c-status" /><col class="c-id" /><col class="c-wf" />
            <col class="c-time" /><col class="c-dur" /><col class="c-steps" /><col class="c-tags" /></colgroup>
          <thead><tr>
            ${["status", "execution", "workflow", "started", "duration", "steps", "tags"].map((c) => html`
              <th>${t(`col.${c}`)}</th>`)}
          </tr></thead>
          <tbody>
            ${page.items.map((item) => html`<${Row} key=${item.execution_id} item=${item} onOpen=${onOpen} />`)}
          </tbody>
        </table>
        ${!page.loading && page.items.length === 0 && html`
          <p class="muted empty" data-testid="exec-empty">${t("noExecutions")}</p>`}
      </div>
      <footer class="pager">
        <button data-testid="exec-prev" disabled=${at === 0}
                onClick=${() => setCursors(cursors.slice(0, -1))}>‹ ${t("prev")}</button>
        <span class="num" data-testid="exec-page">${t("pageN", { n: at + 1 })}</span>
        <button data-testid="exec-next" disabled=${!page.next_cursor}
                onClick=${() => setCursors([...cursors, page.next_cursor])}>${t("next")} ›</button>
        <span class="muted num" data-testid="exec-count" data-count=${page.items.length}>
          ${t("rowsOnPage", { n: page.items.length })}</span>
      </footer>
    </section>`;
}
