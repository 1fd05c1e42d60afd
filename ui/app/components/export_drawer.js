// The audit export drawer: filters and a format → a streamed download whose name the API
// gives (timestamp and execution id or filter), with bytes and rows counted as it comes.

import { apiKey, get, Problem } from "../api.js";
import { t } from "../i18n.js";
import { exportFilters, parseLabels } from "../filters.js";
import { html, useState } from "../lib.js";

function fileNameOf(response, fallback) {
  const header = response.headers.get("Content-Disposition") || "";
  const m = header.match(/filename="?([^";]+)"?/);
  return m ? m[1] : fallback;
}

async function problemOf(response) {
  try {
    const doc = await response.json();
    return new Problem({ status: response.status, ...(doc.error || {}) });
  } catch {
    return new Problem({ status: response.status, category: "unavailable",
                         message: response.statusText });
  }
}

// POST the export, read the stream with progress, hand the file to the browser.
export async function download(body, onProgress) {
  const key = apiKey();
  let response;
  try {
    response = await fetch("/api/v1/tracking/export", {
      method: "POST",
      headers: { "Content-Type": "application/json", ...(key ? { Authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify(body),
    });
  } catch (err) {
    throw new Problem({ category: "network", message: err.message });
  }
  if (!response.ok) throw await problemOf(response);
  const exportId = response.headers.get("X-Export-Id");
  const reader = response.body.getReader();
  const chunks = [];
  let bytes = 0;
  let lines = 0;
  const framing = body.format === "ndjson" ? 0 : 1; // the CSV header, JSON's "["
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (err) {
      throw new Problem({ category: "network", message: err.message });
    }
    if (chunk.done) break;
    chunks.push(chunk.value);
    bytes += chunk.value.length;
    for (const b of chunk.value) if (b === 10) lines += 1;
    onProgress({ bytes, rows: Math.max(lines - framing, 0), exportId });
  }
  // The API counted the rows it wrote, and knows whether the stream ended early.
  let rows = Math.max(lines - framing - (body.format === "json" && lines > 1 ? 1 : 0), 0);
  if (exportId) {
    let status = null;
    try { status = await get(`/exports/${encodeURIComponent(exportId)}`); } catch { /* another replica */ }
    if (status && status.error) {
      throw new Problem({ category: "unavailable", code: "export_failed", message: status.error });
    }
    if (status && status.finished) rows = status.rows;
  }
  const name = fileNameOf(response, `runledger-export.${body.format}`);
  const url = URL.createObjectURL(new Blob(chunks, { type: response.headers.get("Content-Type") }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return { name, bytes, rows, exportId };
}

export function ExportDrawer({ executionId, filters, onClose, onProblem }) {
  const [form, setForm] = useState({
    scope: executionId ? "execution" : "filters", format: "csv", from: filters.from,
    to: filters.to, workflow_id: filters.workflow_id, system: filters.system,
    module: filters.module, labels: filters.labels, status: filters.status,
  });
  const [progress, setProgress] = useState(null);
  const [result, setResult] = useState(null);
  const [bad, setBad] = useState([]);
  const set = (field) => (e) => setForm({ ...form, [field]: e.target.value });
  const byExecution = form.scope === "execution" && executionId;
  const submit = async (e) => {
    e.preventDefault();
    const found = parseLabels(form.labels).bad;
    setBad(found);
    if (found.length) return;
    const filters = byExecution ? { execution_id: executionId } : exportFilters(form);
    setResult(null);
    setProgress({ bytes: 0, rows: 0 });
    try {
      setResult(await download({ format: form.format, filters }, setProgress));
    } catch (err) {
      onProblem(err);
    }
    setProgress(null);
  };
  const text = (field, label) => html`
    <label>${label}<input name=${field} value=${form[field]} onInput=${set(field)}
                          disabled=${byExecution} autocomplete="off"
                          placeholder=${field === "labels" ? t("labelsHint") : ""} /></label>`;
  return html`
    <aside class="drawer" data-testid="export-drawer">
      <h2>📤 ${t("exportTitle")}</h2>
      <form onSubmit=${submit}>
        ${executionId && html`<label>${t("scope")}
          <select name="scope" value=${form.scope} onChange=${set("scope")}>
            <option value="execution">${t("thisExecution")} (${executionId})</option>
            <option value="filters">${t("byFilters")}</option>
          </select></label>`}
        <fieldset class="export-filters" disabled=${byExecution}>
          <label>${t("from")}<input name="from" type="datetime-local" value=${form.from}
                                    onInput=${set("from")} /></label>
          <label>${t("to")}<input name="to" type="datetime-local" value=${form.to}
                                  onInput=${set("to")} /></label>
          ${text("workflow_id", t("field.workflow_id"))}
          ${text("system", t("system"))}
          ${text("module", t("module"))}
          ${text("labels", t("field.labels"))}
          ${bad.length > 0 && html`<p class="error" data-testid="export-labels-problem">
            ${t("badLabels", { items: bad.join(", ") })}</p>`}
          ${form.status && html`<p class="muted">${t("field.status")}:
            ${t(`status.${form.status}`)}</p>`}
        </fieldset>
        <label>${t("format")}
          <select name="format" value=${form.format} onChange=${set("format")}>
            <option value="csv">CSV</option><option value="json">JSON</option>
          </select></label>
        <p class="export-status" aria-live="polite">
          ${progress && html`<span data-testid="export-progress">
            ${t("exporting", { rows: progress.rows, kb: Math.round(progress.bytes / 1024) })}</span>`}
          ${result && html`<span class="ok" data-testid="export-done" data-rows=${result.rows}>
            ✔ <span class="raw file-name">${result.name}</span>${" "}
            (${t("rowsBytes", { rows: result.rows, kb: Math.round(result.bytes / 1024) })})</span>`}
        </p>
        <div class="actions">
          <button type="button" onClick=${onClose}>${t("close")}</button>
          <button type="submit" data-testid="export-submit" disabled=${Boolean(progress)}>
            ${t("download")}</button>
        </div>
      </form>
    </aside>`;
}
