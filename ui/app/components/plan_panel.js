// Left column: where the plan comes from (a saved workflow or JSON), its summary, the
// inputs it needs and what validation found, each problem pointing at its step.

import { t } from "../i18n.js";
import { html, useState } from "../lib.js";
import { formatMs, planSummary } from "../model.js";

export function PlanPanel({ planState, workflows, actions }) {
  const { plan, estimate, text, problems, valid } = planState;
  const [workflow, setWorkflow] = useState("");
  const summary = planSummary(plan);
  return html`
    <section class="panel plan" data-testid="plan-panel">
      <h2>📋 ${t("planAndInputs")}</h2>
      <div class="row">
        <select data-testid="workflow-select" value=${workflow}
                onChange=${(e) => setWorkflow(e.target.value)}>
          <option value="">${t("pickWorkflow")}</option>
          ${workflows.map((w) => html`<option value=${w.id} class="raw">${w.name || w.id}</option>`)}
        </select>
        <button disabled=${!workflow} data-testid="load-workflow"
                onClick=${() => actions.loadWorkflow(workflow)}>${t("load")}</button>
      </div>
      <textarea data-testid="plan-json" spellcheck="false" rows="10"
                placeholder=${t("planPlaceholder")} value=${text}
                onInput=${(e) => actions.editPlan(e.target.value)}></textarea>
      <button data-testid="validate" onClick=${actions.validatePlan}>${t("validate")}</button>
      ${valid && html`<p class="ok" data-testid="plan-valid">✔ ${t("planValid")}</p>`}
      ${problems.length > 0 && html`
        <ul class="problems" data-testid="plan-problems">
          ${problems.map((p) => html`
            <li data-step=${p.step || ""}>
              ${p.step && html`<code>${p.step}</code> `}<span class="raw">${p.text}</span></li>`)}
        </ul>`}
      ${plan && html`
        <dl class="summary" data-testid="plan-summary">
          <dt>${t("steps")}</dt><dd data-testid="summary-steps">${summary.steps}</dd>
          <dt>${t("systems")}</dt><dd class="raw">${summary.systems.join(", ") || "–"}</dd>
          <dt>${t("modules")}</dt><dd class="raw">${summary.modules.join(", ") || "–"}</dd>
          <dt>${t("estimate")}</dt><dd>${estimate ? formatMs(estimate) : t("noRunsYet")}</dd>
        </dl>
        <h3>${t("requiredInputs")}</h3>
        ${Object.keys(summary.inputs).length === 0
          ? html`<p class="muted">${t("noInputs")}</p>`
          : html`<ul class="inputs" data-testid="required-inputs">
              ${Object.entries(summary.inputs).map(([name, spec]) => html`
                <li><code>${name}</code> <span class="muted raw">${spec.type}</span>
                  <span class="muted"> · ${spec.steps.join(", ")}</span></li>`)}
            </ul>`}`}
    </section>`;
}
