// Middle column, bottom: one card per step (status, attempts, duration, error), the debug
// pause (next step and its resolved input) and the forms of steps waiting for input.

import { t } from "../i18n.js";
import { html, useEffect, useRef, useState } from "../lib.js";
import { formatMs } from "../model.js";
import { SchemaForm } from "./schema_form.js";

export function StepCards({ detail, selected, onSelect, onRerun }) {
  const steps = (detail && detail.steps) || [];
  const refs = useRef({});
  useEffect(() => {
    const el = selected && refs.current[selected];
    if (el) el.scrollIntoView({ block: "nearest" });
  }, [selected]);
  if (!steps.length) return null;
  return html`
    <section class="panel steps" data-testid="steps">
      <h2>${t("steps")}</h2>
      <div class="cards">
        ${steps.map((s) => html`
          <article key=${s.step_id} data-step=${s.step_id} data-status=${s.status}
                   ref=${(el) => { refs.current[s.step_id] = el; }}
                   class=${`card status-${s.status}${s.step_id === selected ? " selected" : ""}`}
                   onClick=${() => onSelect(s.step_id)}>
            <header><code>${s.step_id}</code>
              <span class=${`badge status-${s.status}`}>${t(`status.${s.status}`)}</span></header>
            <div class="muted raw">${[s.system, s.module].filter(Boolean).join(" / ")}</div>
            <div>${t("attempts")}: ${s.attempts} · ${formatMs(s.duration_ms)}</div>
            ${s.error && html`<div class="error raw" data-testid="step-error">
              ${s.error_type && html`<strong>${s.error_type}</strong> `}${s.error}</div>`}
            ${onRerun && ["succeeded", "failed", "skipped", "stopped"].includes(s.status) && html`
              <button class="small" data-testid="rerun-step"
                      onClick=${(e) => { e.stopPropagation(); onRerun(s.step_id); }}>
                ↺ ${t("rerunFromHere")}</button>`}
          </article>`)}
      </div>
    </section>`;
}

export function DebugPanel({ pause, busy, onStep, onResume }) {
  if (!pause) return null;
  return html`
    <section class="panel debug" data-testid="debug-panel">
      <h2>🐛 ${t("debugPaused")} <code data-testid="debug-next">${pause.nextStep}</code></h2>
      <h3>${t("resolvedInput")}</h3>
      <pre data-testid="debug-context">${JSON.stringify(pause.nextInput ?? {}, null, 2)}</pre>
      <button data-testid="debug-continue" disabled=${busy} onClick=${onStep}>
        ⏭ ${t("continueStep")}</button>
      <button data-testid="debug-resume" disabled=${busy} onClick=${onResume}>
        ⏯ ${t("runToEnd")}</button>
    </section>`;
}

export function InputForms({ pending, onSubmit }) {
  if (!pending.length) return null;
  return html`${pending.map((p) => html`<${InputForm} key=${p.stepId} pending=${p}
                                                     onSubmit=${onSubmit} />`)}`;
}

function InputForm({ pending, onSubmit }) {
  const [value, setValue] = useState({});
  const [sending, setSending] = useState(false);
  const [problems, setProblems] = useState([]);
  const submit = async (e) => {
    e.preventDefault();
    setSending(true);
    setProblems(await onSubmit(pending.stepId, value));
    setSending(false);
  };
  return html`
    <form class="panel input-form" data-testid="input-form" data-step=${pending.stepId}
          onSubmit=${submit}>
      <h2>✍ ${t("inputRequired")} <code>${pending.stepId}</code></h2>
      ${pending.prompt && html`<p>${pending.prompt}</p>`}
      <${SchemaForm} schema=${pending.schema} value=${value} onChange=${setValue} />
      ${problems.length > 0 && html`<ul class="problems">${problems.map((l) => html`<li>${l}</li>`)}</ul>`}
      <button type="submit" data-testid="input-submit" disabled=${sending}>${t("send")}</button>
    </form>`;
}
