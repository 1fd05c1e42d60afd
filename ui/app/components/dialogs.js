// The page's dialogs: execute parameters, subscribe to an execution id, API key.

import { t } from "../i18n.js";
import { html, useEffect, useState } from "../lib.js";

const ENVIRONMENTS = ["dev", "test", "stage", "prod"];
export const TIMEOUT_RANGE = [30, 300]; // seed 000's dialog; the API itself allows more

function Dialog({ title, testid, onCancel, children }) {
  return html`
    <div class="backdrop" onClick=${(e) => e.target === e.currentTarget && onCancel()}>
      <div class="dialog" role="dialog" aria-label=${title} data-testid=${testid}>
        <h2>${title}</h2>
        ${children}
      </div>
    </div>`;
}

function typedValue(spec, raw) {
  const type = spec && spec.type;
  if (type === "integer" || type === "int") return /^-?\d+$/.test(raw) ? parseInt(raw, 10) : raw;
  if (type === "number" || type === "float") return raw !== "" && !Number.isNaN(Number(raw)) ? Number(raw) : raw;
  if (type === "boolean" || type === "bool") return raw === "true" ? true : raw === "false" ? false : raw;
  if (type === "object" || type === "array") {
    try { return JSON.parse(raw); } catch { return raw; }
  }
  return raw;
}

export function ExecuteDialog({ debug, required, onValidate, onSubmit, onCancel }) {
  const [environment, setEnvironment] = useState("dev");
  const [timeoutSec, setTimeoutSec] = useState("");
  const [jsonMode, setJsonMode] = useState(false);
  const [rows, setRows] = useState(Object.keys(required).map((k) => ({ key: k, value: "" })));
  const [json, setJson] = useState("{}");
  const [problems, setProblems] = useState([]);
  const [checking, setChecking] = useState(false);

  const inputs = () => {
    if (jsonMode) return JSON.parse(json);
    const out = {};
    for (const r of rows) if (r.key && r.value !== "") out[r.key] = typedValue(required[r.key], r.value);
    return out;
  };
  const submit = async (e) => {
    e.preventDefault();
    let params;
    try {
      params = { environment, inputs: inputs(), debug };
    } catch (err) {
      setProblems([`inputs: ${t("badJson")} (${err.message})`]);
      return;
    }
    if (timeoutSec !== "") {
      const n = Number(timeoutSec);
      if (!(n >= TIMEOUT_RANGE[0] && n <= TIMEOUT_RANGE[1])) {
        setProblems([`timeoutSec: ${t("timeoutRange", { min: TIMEOUT_RANGE[0], max: TIMEOUT_RANGE[1] })}`]);
        return;
      }
      params.timeoutSec = n;
    }
    setChecking(true);
    const found = await onValidate(params);
    setChecking(false);
    setProblems(found);
    if (!found.length) onSubmit(params);
  };
  const toJson = () => {
    try { setJson(JSON.stringify(inputs(), null, 2)); } catch { /* keep the text */ }
    setJsonMode(!jsonMode);
  };
  const setRow = (i, field, v) => setRows(rows.map((r, j) => (j === i ? { ...r, [field]: v } : r)));
  return html`
    <${Dialog} title=${debug ? t("debugParams") : t("executeParams")} testid="execute-dialog"
               onCancel=${onCancel}>
      <form onSubmit=${submit}>
        <label>${t("environment")} *
          <select name="environment" value=${environment} onChange=${(e) => setEnvironment(e.target.value)}>
            ${ENVIRONMENTS.map((v) => html`<option value=${v}>${v}</option>`)}
          </select></label>
        <div class="inputs-head"><span>${t("inputs")}</span>
          <button type="button" class="small" data-testid="json-mode" onClick=${toJson}>
            ${jsonMode ? t("keyValueMode") : t("jsonMode")}</button></div>
        ${jsonMode
          ? html`<textarea name="inputs-json" rows="6" value=${json}
                           onInput=${(e) => setJson(e.target.value)}></textarea>`
          : html`<div class="kv">
              ${rows.map((r, i) => html`
                <div class="kv-row">
                  <input placeholder=${t("key")} value=${r.key} data-testid="input-key"
                         onInput=${(e) => setRow(i, "key", e.target.value)} />
                  <input placeholder=${t("value")} value=${r.value} data-testid=${`input-${r.key}`}
                         onInput=${(e) => setRow(i, "value", e.target.value)} />
                </div>`)}
              <button type="button" class="small" onClick=${() => setRows([...rows, { key: "", value: "" }])}>
                + ${t("addInput")}</button>
            </div>`}
        <label>timeoutSec <span class="muted">(${TIMEOUT_RANGE[0]}–${TIMEOUT_RANGE[1]})</span>
          <input name="timeoutSec" type="number" value=${timeoutSec} onInput=${(e) => setTimeoutSec(e.target.value)} /></label>
        ${problems.length > 0 && html`
          <ul class="problems" data-testid="execute-problems">
            ${problems.map((p) => html`<li>${p}</li>`)}</ul>`}
        <div class="actions">
          <button type="button" onClick=${onCancel}>${t("cancel")}</button>
          <button type="submit" data-testid="execute-submit" disabled=${checking}>
            ${debug ? `🐛 ${t("debug")}` : `▶ ${t("run")}`}</button>
        </div>
      </form>
    </${Dialog}>`;
}

export function SubscribeDialog({ current, recent, onSubmit, onCancel }) {
  const [eid, setEid] = useState(current || "");
  const [problem, setProblem] = useState("");
  const submit = (e) => {
    e.preventDefault();
    if (!eid.trim()) { setProblem(t("eidRequired")); return; }
    onSubmit(eid.trim());
  };
  return html`
    <${Dialog} title=${t("subscribeTitle")} testid="subscribe-dialog" onCancel=${onCancel}>
      <form onSubmit=${submit}>
        <label>execution_id *
          <input name="execution_id" value=${eid} list="recent-executions"
                 onInput=${(e) => { setEid(e.target.value); setProblem(""); }} /></label>
        <datalist id="recent-executions">
          ${recent.map((r) => html`<option value=${r.execution_id}>${r.status}</option>`)}
        </datalist>
        ${recent.length > 0 && html`<ul class="recent">
          ${recent.map((r) => html`<li><button type="button" class="link"
              onClick=${() => onSubmit(r.execution_id)}>${r.execution_id}</button>
              <span class=${`badge status-${r.status}`}>${t(`status.${r.status}`)}</span></li>`)}
        </ul>`}
        ${problem && html`<p class="error">${problem}</p>`}
        <div class="actions">
          <button type="button" onClick=${onCancel}>${t("cancel")}</button>
          <button type="submit" data-testid="subscribe-submit">🔌 ${t("subscribe")}</button>
        </div>
      </form>
    </${Dialog}>`;
}

export function KeyDialog({ onSubmit, onCancel }) {
  const [key, setKey] = useState("");
  useEffect(() => { document.querySelector("[name=api-key]")?.focus(); }, []);
  return html`
    <${Dialog} title=${t("keyTitle")} testid="key-dialog" onCancel=${onCancel}>
      <form onSubmit=${(e) => { e.preventDefault(); onSubmit(key); }}>
        <p class="muted">${t("keyHelp")}</p>
        <input name="api-key" type="password" value=${key} onInput=${(e) => setKey(e.target.value)} />
        <div class="actions">
          <button type="button" onClick=${onCancel}>${t("cancel")}</button>
          <button type="submit">${t("save")}</button>
        </div>
      </form>
    </${Dialog}>`;
}
