// Middle column, top: the execution's events in seq order, one row each; a click jumps
// to the step's card and its log lines.

import { t } from "../i18n.js";
import { html } from "../lib.js";
import { clock, timelineRows, tone } from "../model.js";

export function Filters({ filter, steps, onChange }) {
  return html`
    <div class="filters" data-testid="timeline-filters">
      <label>${t("show")}
        <select data-testid="filter-kind" value=${filter.kind}
                onChange=${(e) => onChange({ ...filter, kind: e.target.value })}>
          <option value="events">${t("filter.events")}</option>
          <option value="steps">${t("filter.steps")}</option>
          <option value="errors">${t("filter.errors")}</option>
          <option value="all">${t("filter.all")}</option>
        </select>
      </label>
      <label>${t("step")}
        <select data-testid="filter-step" value=${filter.step}
                onChange=${(e) => onChange({ ...filter, step: e.target.value })}>
          <option value="">${t("allSteps")}</option>
          ${steps.map((s) => html`<option value=${s}>${s}</option>`)}
        </select>
      </label>
    </div>`;
}

export function Timeline({ events, filter, selected, onSelect }) {
  const rows = timelineRows(events, filter);
  return html`
    <section class="panel timeline" data-testid="timeline">
      <h2>⏱ ${t("timeline")} <span class="muted">(${rows.length})</span></h2>
      ${rows.length === 0 && html`<p class="muted">${t("noEvents")}</p>`}
      <ol>
        ${rows.map((e) => html`
          <li key=${e.seq} data-seq=${e.seq} data-type=${e.event_type}
              class=${`event tone-${tone(e)}${e.step_id && e.step_id === selected ? " selected" : ""}`}
              onClick=${() => e.step_id && onSelect(e.step_id)}>
            <span class="seq">#${e.seq}</span>
            <span class="time">${clock(e.timestamp)}</span>
            <span class="type">${t(`event.${e.event_type}`)}</span>
            ${e.step_id && html`<code class="step">${e.step_id}</code>`}
            <span class="message raw">${e.message}</span>
          </li>`)}
      </ol>
    </section>`;
}
