// Right column "📊 Metrics & statistics": the scope (the followed execution, or every
// execution the filters select), the summary cards and the charts of that scope.

import { cardFigures, chartModel, useAnalytics } from "../analytics.js";
import { activeFilters, localTime, percent } from "../filters.js";
import { t } from "../i18n.js";
import { html, useMemo, useState } from "../lib.js";
import { formatMs } from "../model.js";
import { durationOption, EChart, errorsOption, overTimeOption, slowestOption } from "./charts.js";

const CARDS = [
  ["executions", (v) => String(v)],
  ["successRate", percent],
  ["plans", (v) => String(v)],
  ["systems", (v) => String(v)],
  ["modules", (v) => String(v)],
  ["crossSystem", percent],
  ["avgDuration", (v) => formatMs(v)],
  ["failedSteps", (v) => String(v)],
];
const INTERVALS = ["auto", "minute", "hour", "day"];

function Cards({ figures, loading }) {
  return html`
    <div class=${`metric-cards${loading ? " loading" : ""}`} data-testid="metric-cards">
      ${CARDS.map(([key, format]) => {
        const raw = figures ? figures[key] : null;
        const shown = raw === null || raw === undefined ? "–" : format(raw);
        return html`
          <div class=${`metric metric-${key}${raw ? " nonzero" : ""}`} data-testid=${`card-${key}`}
               data-value=${raw === null || raw === undefined ? "" : String(raw)}>
            <span class="metric-label">${t(`card.${key}`)}</span>
            <span class="metric-value">${shown}</span>
          </div>`;
      })}
    </div>`;
}

function shownValue(field, value) {
  if (field === "status") return t(`status.${value}`);
  if (field === "from" || field === "to") return value.replace("T", " "); // datetime-local
  return value;
}

function ScopeLine({ scope, summary }) {
  const chips = scope.kind === "execution" ? [["execution_id", scope.eid]] : activeFilters(scope.filters);
  const windowText = summary && summary.from
    ? `${localTime(summary.from, false)} – ${localTime(summary.to, false)}` : "";
  return html`
    <div class="scope-line" data-testid="metrics-scope-line">
      ${chips.length === 0 && html`<span class="muted">${t("allExecutions")}</span>`}
      ${chips.map(([k, v]) => html`<span class="chip"><span class="muted">${t(`field.${k}`)}</span>
        <span class="raw">${shownValue(k, v)}</span></span>`)}
      ${windowText && html`<span class="muted window">🕒 <span class="raw">${windowText}</span></span>`}
    </div>`;
}

export function MetricsPanel({ filters, eid, detail, theme, lang, version, onProblem, onShowList }) {
  const [scopeKind, setScopeKind] = useState("filters");
  const [interval, setBucket] = useState("auto");
  const [reloads, setReloads] = useState(0);
  const kind = scopeKind === "execution" && eid ? "execution" : "filters";
  const scope = kind === "execution"
    ? { kind, eid, workflowId: (detail && detail.workflow_id) || "" }
    : { kind, filters };
  const { summary, stats, loading, problem } = useAnalytics(scope, interval, `${reloads}:${version}`, onProblem);
  const figures = cardFigures(summary);
  const model = useMemo(() => chartModel(stats), [stats]);
  const options = useMemo(() => model && {
    over: overTimeOption(model), durations: durationOption(model),
    slowest: slowestOption(model), errors: errorsOption(model),
  }, [model, lang, theme]);
  const charts = [
    ["over", "chart-over-time", model && !model.buckets.length, "chart.overTime"],
    ["durations", "chart-durations", model && !model.durations.length, "chart.durations"],
    ["slowest", "chart-slowest", model && !model.slowest.length, "chart.slowest"],
    ["errors", "chart-errors", model && !model.errors.length, "chart.errors"],
  ];
  return html`
    <aside class="panel metrics" data-testid="metrics" data-loading=${loading ? "true" : "false"}>
      <header class="metrics-title">
        <h2>📊 ${t("metrics")}</h2>
        <button class="icon" data-testid="metrics-refresh" title=${t("refresh")}
                aria-label=${t("refresh")} onClick=${() => setReloads((n) => n + 1)}>↻</button>
      </header>
      <div class="metrics-head">
        <label>${t("scopeLabel")}
          <select data-testid="metrics-scope" value=${kind}
                  onChange=${(e) => setScopeKind(e.target.value)}>
            <option value="filters">${t("scopeFilters")}</option>
            <option value="execution" disabled=${!eid}>${t("thisExecution")}</option>
          </select></label>
        <label>${t("interval")}
          <select data-testid="metrics-interval" value=${interval}
                  onChange=${(e) => setBucket(e.target.value)}>
            ${INTERVALS.map((i) => html`<option value=${i}>${t(`intervals.${i}`)}</option>`)}
          </select></label>
      </div>
      <${ScopeLine} scope=${scope} summary=${summary} />
      ${problem && html`<p class="error metrics-problem" data-testid="metrics-problem"
          data-category=${problem.category}>
        <strong>${t(`category.${problem.category}`)}</strong> <span class="raw">${problem.message}</span></p>`}
      <${Cards} figures=${figures} loading=${loading} />
      ${charts.map(([key, testid, empty, title]) => html`
        <h3>${t(title)}</h3>
        <${EChart} option=${options && options[key]} theme=${theme} testid=${testid}
                   empty=${Boolean(empty)} />`)}
      <button class="link tracking-link" data-testid="show-list" onClick=${onShowList}>
        🔍 ${t("showExecutions")}</button>
    </aside>`;
}
