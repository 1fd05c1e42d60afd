// The Execution Center: plan & inputs | timeline & steps | metrics, live log below.

import { detailLines, get, post, Problem, query, setApiKey } from "./api.js";
import { ExecuteDialog, KeyDialog, SubscribeDialog } from "./components/dialogs.js";
import { ExecutionsList } from "./components/executions_list.js";
import { ExportDrawer } from "./components/export_drawer.js";
import { LogPanel } from "./components/log_panel.js";
import { MetricsPanel } from "./components/metrics.js";
import { PlanPanel } from "./components/plan_panel.js";
import { DebugPanel, InputForms, StepCards } from "./components/steps.js";
import { Filters, Timeline } from "./components/timeline.js";
import { TabBar, TABS } from "./components/tabs.js";
import { ProblemBanner, Toolbar } from "./components/toolbar.js";
import { WorkflowsList } from "./components/workflows_list.js";
import { useExecution } from "./execution.js";
import { filtersFromUrl, filtersToUrl } from "./filters.js";
import { language, setLanguage, t } from "./i18n.js";
import { html, render, useEffect, useState } from "./lib.js";
import { debugPause, elapsedMs, FINAL, pendingInputs, planSummary, stoppedAt } from "./model.js";
import { usePlan } from "./plan.js";

const path = (eid, action = "") => `/executions/${encodeURIComponent(eid)}${action && `/${action}`}`;

function App() {
  const [lang, setLang] = useState(language());
  const [theme, setTheme] = useState(localStorage.getItem("runledger.theme") || "light");
  const [problem, setProblem] = useState(null);
  const [dialog, setDialog] = useState(null); // {kind: "execute", debug} | {kind: "subscribe"} | …
  const [eid, setEid] = useState(new URLSearchParams(location.search).get("execution") || "");
  const [generation, setGeneration] = useState(0);
  const [busy, setBusy] = useState(false);
  const [selected, setSelected] = useState("");
  const [filter, setFilter] = useState({ kind: "events", step: "" });
  const [filtersOpen, setFiltersOpen] = useState(false);
  const [log, setLog] = useState({ open: true, level: "all" });
  const [recent, setRecent] = useState([]);
  const [now, setNow] = useState(Date.now());
  const [keyed, setKeyed] = useState(0); // a new API key: everything read is read again
  const [filters, setFilters] = useState(filtersFromUrl);
  const [tab, setTab] = useState(() => {
    const asked = new URLSearchParams(location.search).get("tab");
    return TABS.includes(asked) ? asked : "run";
  });

  const report = (err) => {
    const p = err instanceof Problem ? err : new Problem(err);
    if (p.status === 401) setDialog({ kind: "key" });
    setProblem(p);
  };
  const plan = usePlan(report);
  const { events, detail, connection } = useExecution(eid, generation, report);

  useEffect(() => { document.documentElement.dataset.theme = theme; }, [theme]);
  useEffect(() => { document.title = `Runledger · ${t("title")}`; }, [lang]);
  useEffect(() => {
    if (!detail || FINAL.has(detail.status)) return undefined;
    const timer = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(timer);
  }, [detail && detail.status]);
  useEffect(() => {
    const url = filtersToUrl(new URL(location.href), filters);
    if (eid) url.searchParams.set("execution", eid);
    else url.searchParams.delete("execution");
    if (tab !== "run") url.searchParams.set("tab", tab);
    else url.searchParams.delete("tab");
    history.replaceState(null, "", url);
  }, [eid, tab, JSON.stringify(filters)]);

  const act = async (fn) => {
    setBusy(true);
    try {
      return await fn();
    } catch (err) {
      report(err);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  const follow = (id) => {
    setTab("run");
    setEid(id);
    setSelected("");
    setGeneration((g) => g + 1);
    setDialog(null);
  };
  const actions = {
    lang,
    setLang: (l) => { setLanguage(l); setLang(l); },
    toggleTheme: () => {
      const next = theme === "dark" ? "light" : "dark";
      localStorage.setItem("runledger.theme", next);
      document.documentElement.dataset.theme = next; // before the render: charts read its colours
      setTheme(next);
    },
    openExecute: (debug) => setDialog({ kind: "execute", debug }),
    openSubscribe: async () => {
      setDialog({ kind: "subscribe" });
      try { setRecent((await get(`/executions${query({ limit: 10 })}`)).items || []); } catch { /* optional */ }
    },
    openExport: () => setDialog({ kind: "export" }),
    toggleFilters: () => setFiltersOpen(!filtersOpen),
    control: (action) => act(async () => {
      const body = action === "stop" ? { reason: t("stoppedFromPage") } : {};
      await post(path(eid, action), body);
      if (action === "retry") setGeneration((g) => g + 1);
    }),
  };
  const validateRun = async (params) => {
    const planProblems = await plan.validate();
    if (planProblems.length) return planProblems;
    try {
      const { debug, ...checked } = params; // eslint-disable-line no-unused-vars
      await post("/executions/validate-inputs", { plan: plan.state.plan, ...checked });
      return [];
    } catch (err) {
      if (err.category !== "validation") report(err);
      return detailLines(err).length ? detailLines(err) : [err.message];
    }
  };
  const startRun = (params) => act(async () => {
    setDialog(null);
    const body = { plan: plan.state.plan, ...params };
    if (plan.state.workflowId) body.workflow_id = plan.state.workflowId;
    const started = await post("/executions", body);
    setProblem(null);
    follow(started.execution_id);
  });
  const answer = async (stepId, data) => {
    try {
      await post(path(eid, "input"), { step_id: stepId, data });
      return [];
    } catch (err) {
      return detailLines(err).length ? detailLines(err) : [err.message];
    }
  };
  const rerun = (stepId) => act(async () => {
    await post(path(eid, "rerun"), { from_step: stepId });
    setGeneration((g) => g + 1);
  });

  const stopped = stoppedAt(detail);
  const stepIds = ((detail && detail.steps) || []).map((s) => s.step_id);
  const finished = detail && FINAL.has(detail.status);
  return html`
    <div class="page" lang=${lang}>
      <${Toolbar} detail=${detail} connection=${eid ? connection : "none"}
                  elapsed=${elapsedMs(detail, now)} busy=${busy}
                  hasPlan=${Boolean(plan.state.plan)} actions=${actions} />
      <${ProblemBanner} problem=${problem} lines=${problem ? detailLines(problem) : []}
                        onClose=${() => setProblem(null)} />
      <main class="columns">
        <${PlanPanel} planState=${plan.state} workflows=${plan.workflows} actions=${plan.actions} />
        <div class="center">
          <${TabBar} tab=${tab} onTab=${setTab} />
          ${tab === "executions" && html`
            <${ExecutionsList} filters=${filters} onFilters=${setFilters} onOpen=${follow}
                               onProblem=${report} version=${`${keyed}:${finished ? eid : ""}`} />`}
          ${tab === "workflows" && html`
            <${WorkflowsList} onProblem=${report}
                              onLoad=${(id) => { setTab("run"); plan.actions.loadWorkflow(id); }}
                              onExecutions=${(id) => { setFilters({ ...filters, workflow_id: id }); setTab("executions"); }} />`}
          ${tab === "run" && html`
            ${detail && detail.status === "stopped" && html`
              <div class="notice" data-testid="stopped-notice">
                ⏹ ${t("stoppedAt", { steps: stopped.join(", ") || "–" })}
                ${stopped[0] && html`<button class="small" data-testid="rerun-stopped"
                    onClick=${() => rerun(stopped[0])}>↺ ${t("rerunFrom", { step: stopped[0] })}</button>`}
              </div>`}
            ${detail && detail.status === "failed" && html`
              <div class="notice error" data-testid="failed-notice">✖ <span class="raw">${detail.message || t("status.failed")}</span></div>`}
            ${filtersOpen && html`<${Filters} filter=${filter} steps=${stepIds} onChange=${setFilter} />`}
            <${DebugPanel} pause=${debugPause(events, detail)} busy=${busy}
                           onStep=${() => act(() => post(path(eid, "step")))}
                           onResume=${() => actions.control("resume")} />
            <${InputForms} pending=${pendingInputs(events, detail)} onSubmit=${answer} />
            <${Timeline} events=${events} filter=${filter} selected=${selected} onSelect=${setSelected} />
            <${StepCards} detail=${detail} selected=${selected} onSelect=${setSelected}
                          onRerun=${finished ? rerun : null} />`}
        </div>
        <${MetricsPanel} filters=${filters} eid=${eid} detail=${detail} theme=${theme} lang=${lang}
                         version=${`${keyed}:${detail ? `${detail.execution_id}:${FINAL.has(detail.status)}` : ""}`}
                         onProblem=${report} onShowList=${() => setTab("executions")} />
      </main>
      <${LogPanel} events=${events} open=${log.open} level=${log.level} selected=${selected}
                   onToggle=${() => setLog({ ...log, open: !log.open })}
                   onLevel=${(level) => setLog({ ...log, level })} />
      ${dialog && dialog.kind === "execute" && html`
        <${ExecuteDialog} debug=${dialog.debug} required=${planSummary(plan.state.plan).inputs}
                          onValidate=${validateRun} onSubmit=${startRun}
                          onCancel=${() => setDialog(null)} />`}
      ${dialog && dialog.kind === "subscribe" && html`
        <${SubscribeDialog} current=${eid} recent=${recent} onSubmit=${follow}
                            onCancel=${() => setDialog(null)} />`}
      ${dialog && dialog.kind === "export" && html`
        <${ExportDrawer} executionId=${eid} filters=${filters} onClose=${() => setDialog(null)}
                         onProblem=${report} />`}
      ${dialog && dialog.kind === "key" && html`
        <${KeyDialog} onCancel=${() => setDialog(null)}
                      onSubmit=${(key) => { setApiKey(key); setDialog(null); setProblem(null); plan.reload(); setKeyed((n) => n + 1); }} />`}
    </div>`;
}

render(html`<${App} />`, document.getElementById("app"));
