import { t } from "../i18n.js";
import { html } from "../lib.js";
import { FINAL, formatMs } from "../model.js";

const LIGHTS = { live: "🟢", polling: "🟡", reconnecting: "🟡", connecting: "🟡" };

export function Toolbar({ detail, connection, elapsed, busy, hasPlan, actions }) {
  const status = detail ? detail.status : null;
  const active = status && !FINAL.has(status);
  const paused = status === "paused";
  return html`
    <header class="toolbar">
      <h1>${t("title")}</h1>
      <div class="buttons">
        <button data-testid="run" disabled=${busy || !hasPlan || active}
                onClick=${() => actions.openExecute(false)}>▶ ${t("run")}</button>
        <button data-testid="debug" disabled=${busy || !hasPlan || active}
                onClick=${() => actions.openExecute(true)}>🐛 ${t("debug")}</button>
        <button data-testid="pause" disabled=${busy || !active || paused}
                onClick=${() => actions.control("pause")}>⏸ ${t("pause")}</button>
        <button data-testid="resume" disabled=${busy || !paused}
                onClick=${() => actions.control("resume")}>⏯ ${t("resume")}</button>
        <button data-testid="stop" disabled=${busy || !active}
                onClick=${() => actions.control("stop")}>⏹ ${t("stop")}</button>
        ${status === "failed" && html`
          <button data-testid="retry" disabled=${busy}
                  onClick=${() => actions.control("retry")}>↻ ${t("retryFailed")}</button>`}
        <button data-testid="subscribe" onClick=${actions.openSubscribe}>
          🔌 ${t("subscribe")}</button>
        <button data-testid="export" onClick=${actions.openExport}>📤 ${t("export")}</button>
        <button data-testid="filters" onClick=${actions.toggleFilters}>🧭 ${t("filters")}</button>
      </div>
      <div class="run-state">
        ${detail && html`
          <span class="eid" data-testid="execution-id">${detail.execution_id}</span>
          <span class=${`badge status-${status}`} data-testid="status">${t(`status.${status}`)}</span>
          <span class="timer" data-testid="timer">⏱ ${formatMs(elapsed)}</span>`}
        <span class="light" data-testid="light" data-state=${connection}
              title=${t(`conn.${connection}`)}>
          ${LIGHTS[connection] || "🔴"} ${t(`conn.${connection}`)}</span>
        <select data-testid="language" value=${actions.lang}
                onChange=${(e) => actions.setLang(e.target.value)}>
          <option value="en">English</option>
          <option value="zh">中文</option>
        </select>
        <button class="icon" data-testid="theme" title=${t("theme")}
                onClick=${actions.toggleTheme}>◐</button>
      </div>
    </header>`;
}

export function ProblemBanner({ problem, lines, onClose }) {
  if (!problem) return null;
  return html`
    <div class=${`problem category-${problem.category}`} role="alert" data-testid="problem"
         data-category=${problem.category}>
      <strong>${t(`category.${problem.category}`)}</strong>
      <span>${problem.message}</span>
      ${lines.length > 0 && html`<ul>${lines.map((l) => html`<li>${l}</li>`)}</ul>`}
      <button class="icon" onClick=${onClose} aria-label=${t("close")}>✕</button>
    </div>`;
}
