// The audit export drawer: filters and a format → a streamed download whose name the API
// gives (timestamp and execution id or filter), with bytes and rows counted as it comes.

import { apiKey, Problem } from "../api.js";
import { t } from "../i18n.js";
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
  let rows = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    bytes += value.length;
    for (const b of value) if (b === 10) rows += 1;
    onProgress({ bytes, rows, exportId });
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

export function ExportDrawer({ executionId, onClose, onProblem }) {
  const [form, setForm] = useState({ scope: executionId ? "execution" : "filters", from: "",
                                     to: "", system: "", module: "", format: "csv" });
  const [progress, setProgress] = useState(null);
  const [result, setResult] = useState(null);
  const set = (field) => (e) => setForm({ ...form, [field]: e.target.value });
  const submit = async (e) => {
    e.preventDefault();
    const filters = {};
    if (form.scope === "execution" && executionId) filters.execution_id = executionId;
    for (const f of ["system", "module"]) if (form[f]) filters[f] = form[f];
    if (form.from) filters.from = new Date(form.from).toISOString();
    if (form.to) filters.to = new Date(form.to).toISOString();
    setResult(null);
    setProgress({ bytes: 0, rows: 0 });
    try {
      setResult(await download({ format: form.format, filters }, setProgress));
    } catch (err) {
      onProblem(err);
    }
    setProgress(null);
  };
  return html`
    <aside class="drawer" data-testid="export-drawer">
      <h2>📤 ${t("exportTitle")}</h2>
      <form onSubmit=${submit}>
        ${executionId && html`<label>${t("scope")}
          <select name="scope" value=${form.scope} onChange=${set("scope")}>
            <option value="execution">${t("thisExecution")} (${executionId})</option>
            <option value="filters">${t("byFilters")}</option>
          </select></label>`}
        <label>${t("from")}<input name="from" type="datetime-local" value=${form.from}
                                  onInput=${set("from")} /></label>
        <label>${t("to")}<input name="to" type="datetime-local" value=${form.to}
                                onInput=${set("to")} /></label>
        <label>${t("system")}<input name="system" value=${form.system} onInput=${set("system")} /></label>
        <label>${t("module")}<input name="module" value=${form.module} onInput=${set("module")} /></label>
        <label>${t("format")}
          <select name="format" value=${form.format} onChange=${set("format")}>
            <option value="csv">CSV</option><option value="json">JSON</option>
          </select></label>
        ${progress && html`<p data-testid="export-progress">
          ${t("exporting", { rows: progress.rows, kb: Math.round(progress.bytes / 1024) })}</p>`}
        ${result && html`<p class="ok" data-testid="export-done">✔ ${result.name}
          (${t("rowsBytes", { rows: result.rows, kb: Math.round(result.bytes / 1024) })})</p>`}
        <div class="actions">
          <button type="button" onClick=${onClose}>${t("close")}</button>
          <button type="submit" data-testid="export-submit" disabled=${Boolean(progress)}>
            ${t("download")}</button>
        </div>
      </form>
    </aside>`;
}
