// Bottom: the live log, collapsible, filtered by level, the last LOG_WINDOW lines only.

import { t } from "../i18n.js";
import { html, useEffect, useRef } from "../lib.js";
import { clock, LOG_WINDOW, logLines } from "../model.js";

export function LogPanel({ events, open, level, selected, onToggle, onLevel }) {
  const lines = logLines(events, level);
  const box = useRef(null);
  useEffect(() => {
    if (open && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [open, lines.length]);
  return html`
    <footer class=${`panel log${open ? " open" : ""}`} data-testid="log-panel">
      <header>
        <button class="small" data-testid="log-toggle" onClick=${onToggle}
                aria-expanded=${open}>${open ? "▾" : "▸"} 📜 ${t("liveLog")}</button>
        <label>${t("level")}
          <select data-testid="log-level" value=${level} onChange=${(e) => onLevel(e.target.value)}>
            ${["all", "info", "warn", "error"].map((l) => html`
              <option value=${l}>${t(`levels.${l}`)}</option>`)}
          </select>
        </label>
        <span class="muted">${t("lastLines", { n: LOG_WINDOW })}</span>
      </header>
      ${open && html`
        <div class="lines raw" ref=${box} data-testid="log-lines">
          ${lines.map((l) => html`
            <div key=${l.seq} class=${`line level-${l.level}${l.step && l.step === selected ? " selected" : ""}`}
                 data-step=${l.step || ""}>
              <span class="time">${clock(l.time)}</span>
              <span class="lvl">${l.level.toUpperCase()}</span>
              ${l.step && html`<code>${l.step}</code>`} ${l.text}
            </div>`)}
        </div>`}
    </footer>`;
}
