// What the right column shows, read from the analytics API for one scope: the tracking
// summary (the cards) and the statistics over the same executions (the charts).

import { get, query } from "./api.js";
import { autoInterval, filterParams } from "./filters.js";
import { useEffect, useState } from "./lib.js";

const TOP_STEPS = 8;

// scope: {kind: "filters", filters} | {kind: "execution", eid, workflowId}
export function scopeParams(scope) {
  if (scope.kind === "execution") return { execution_id: scope.eid };
  return filterParams(scope.filters);
}

export function useAnalytics(scope, interval, reloads, onProblem) {
  const [state, setState] = useState({ summary: null, stats: null, loading: true, problem: null });
  const key = JSON.stringify([scope, interval, reloads]);
  useEffect(() => {
    let alive = true;
    const base = scopeParams(scope);
    const every = interval === "auto"
      ? (scope.kind === "execution" ? "minute" : autoInterval(scope.filters)) : interval;
    // The figures over exactly the scope's executions, whatever their workflows.
    const statsPath = `/stats/executions${query({ ...base, interval: every })}`;
    setState((s) => ({ ...s, loading: true }));
    Promise.all([get(`/tracking/summary${query(base)}`), get(statsPath)])
      .then(([summary, stats]) => {
        if (!alive) return;
        setState({ summary, stats: { data: stats, interval: every }, loading: false, problem: null });
      })
      .catch((err) => {
        if (!alive) return;
        // Shown in the panel; the page's banner is for what the user did (and for 401s).
        setState({ summary: null, stats: null, loading: false, problem: err });
        if (err.status === 401) onProblem(err);
      });
    return () => { alive = false; };
    // the key holds everything the reads depend on
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
  return state;
}

// The cards' figures from GET /tracking/summary; success rate from the counts by status.
export function cardFigures(summary) {
  if (!summary) return null;
  const by = summary.executions || {};
  const runs = summary.runs ?? ["succeeded", "failed", "stopped"].reduce((n, s) => n + (by[s] || 0), 0);
  return {
    executions: summary.total ?? 0,
    plans: summary.plans,
    systems: summary.systems,
    modules: summary.modules,
    crossSystem: summary.cross_system_ratio,
    avgDuration: summary.avg_duration_ms,
    failedSteps: summary.failed_steps,
    successRate: runs ? (by.succeeded || 0) / runs : null,
  };
}

// One group: the figures over the scope's executions (the chart code draws several
// side by side, named, should a scope ever be split).
function groupsOf(stats) {
  return [{ name: "", figures: stats.data }];
}

// The charts' data, independent of ECharts: buckets over time, durations, steps, errors.
export function chartModel(stats) {
  if (!stats) return null;
  const groups = groupsOf(stats);
  const times = new Set();
  for (const g of groups) for (const b of g.figures.series || []) times.add(b.at);
  const buckets = [...times].sort();
  const over = groups.map((g) => {
    const at = new Map((g.figures.series || []).map((b) => [b.at, b]));
    return {
      name: g.name,
      succeeded: buckets.map((t) => (at.get(t) ? at.get(t).succeeded : 0)),
      failed: buckets.map((t) => (at.get(t) ? at.get(t).failed : 0)),
      // stopped, or still running: neither a success nor a failure
      other: buckets.map((t) => {
        const b = at.get(t);
        return b ? b.runs - b.succeeded - b.failed : 0;
      }),
    };
  });
  const durations = groups.map((g) => ({
    name: g.name, values: ["avg", "p50", "p95", "p99"].map((k) => (g.figures.duration_ms || {})[k] ?? null),
  }));
  const steps = new Map();
  const all = groups;
  for (const g of all) {
    for (const s of g.figures.slowest_steps || []) {
      const label = g.name ? `${s.step_id} · ${g.name}` : s.step_id;
      if (!steps.has(label) || (steps.get(label).p95 || 0) < (s.p95_ms || 0)) {
        steps.set(label, { label, p95: s.p95_ms, avg: s.avg_ms });
      }
    }
  }
  const errors = new Map();
  for (const g of all) {
    for (const e of g.figures.errors || []) {
      errors.set(e.error_type || "?", (errors.get(e.error_type || "?") || 0) + e.count);
    }
  }
  return {
    interval: stats.interval,
    buckets,
    over,
    durations: durations.filter((d) => d.values.some((v) => v !== null)),
    slowest: [...steps.values()].sort((a, b) => (b.p95 || 0) - (a.p95 || 0)).slice(0, TOP_STEPS),
    errors: [...errors.entries()].map(([type, count]) => ({ type, count }))
      .sort((a, b) => b.count - a.count),
  };
}
