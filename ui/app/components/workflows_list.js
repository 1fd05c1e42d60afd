// Center column, "Workflows" tab: the saved workflows (name filter, cursor pages); pick one
// to load its plan into the run view, or to see its executions and figures.

import { query } from "../api.js";
import { t } from "../i18n.js";
import { html, useState } from "../lib.js";
import { usePage } from "../paging.js";

const PAGE = 20;

function stepCount(w) {
  if (Array.isArray(w.steps)) return w.steps.length;
  if (Array.isArray(w.nodes)) return w.nodes.length;
  return null;
}

export function WorkflowsList({ onLoad, onExecutions, onProblem }) {
  const [name, setName] = useState("");
  const [applied, setApplied] = useState("");
  const [cursors, setCursors] = useState([null]);
  const at = cursors.length - 1;
  const page = usePage(`/workflows${query({ name: applied, limit: PAGE, cursor: cursors[at] })}`,
                       [applied, cursors], onProblem);
  const search = (e) => {
    e.preventDefault();
    setApplied(name.trim());
    setCursors([null]);
  };
  return html`
    <section class="panel workflows" data-testid="workflows-list"
             data-loading=${page.loading ? "true" : "false"}>
      <h2>🧩 ${t("tabs.workflows")}</h2>
      <form class="row" onSubmit=${search}>
        <input name="workflow-name" data-testid="workflow-search" value=${name}
               placeholder=${t("nameContains")} onInput=${(e) => setName(e.target.value)} />
        <button type="submit">${t("apply")}</button>
      </form>
      <div class="table-box">
        <table class="wf-table">
          <colgroup><col class="c-name" /><col class="c-wid" /><col class="c-ver" />
            <col class="c-steps" /><col class="c-tags" /><col class="c-actions" /></colgroup>
          <thead><tr>
            ${["name", "id", "version", "steps", "tags", "actions"].map((c) => html`
              <th>${t(`wfcol.${c}`)}</th>`)}
          </tr></thead>
          <tbody>
            ${page.items.map((w) => html`
              <tr key=${w.id} data-testid="workflow-row" data-workflow=${w.id}>
                <td><span class="raw" title=${w.description || ""}>${w.name || "–"}</span></td>
                <td><code title=${w.id}>${w.id}</code></td>
                <td class="num">${w.version ?? "–"}</td>
                <td class="num">${stepCount(w) ?? "–"}</td>
                <td class="tags">${(w.tags || []).map((tag) => html`<span class="tag raw">${tag}</span>`)}</td>
                <td class="row-actions">
                  <button class="small" data-testid="workflow-load" onClick=${() => onLoad(w.id)}>
                    ▶ ${t("loadPlan")}</button>
                  <button class="small" data-testid="workflow-executions"
                          onClick=${() => onExecutions(w.id)}>🗂 ${t("tabs.executions")}</button>
                </td>
              </tr>`)}
          </tbody>
        </table>
        ${!page.loading && page.items.length === 0 && html`
          <p class="muted empty" data-testid="workflows-empty">${t("noWorkflows")}</p>`}
      </div>
      <footer class="pager">
        <button disabled=${at === 0} onClick=${() => setCursors(cursors.slice(0, -1))}>
          ‹ ${t("prev")}</button>
        <span class="num">${t("pageN", { n: at + 1 })}</span>
        <button disabled=${!page.next_cursor}
                onClick=${() => setCursors([...cursors, page.next_cursor])}>${t("next")} ›</button>
      </footer>
    </section>`;
}
