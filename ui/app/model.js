// What the page shows, derived from the execution's events and detail: pure functions,
// no DOM, no I/O.

export const FINAL = new Set(["succeeded", "failed", "stopped"]);
export const LOG_WINDOW = 500; // the live log keeps the last N lines

const FAILING = new Set(["step_failed", "command_rejected"]);
const WARNING = new Set(["step_retry_scheduled", "execution_paused", "user_input_required"]);

export function tone(event) {
  if (FAILING.has(event.event_type)) return "error";
  if (event.event_type === "execution_completed") {
    const status = event.data && event.data.status;
    return status === "succeeded" ? "success" : status === "stopped" ? "warn" : "error";
  }
  if (event.event_type === "step_succeeded") return "success";
  if (WARNING.has(event.event_type)) return "warn";
  if (event.event_type === "step_skipped") return "muted";
  return "info";
}

// Events in seq order, each once, whatever order and how often they arrive.
export function mergeEvents(known, incoming) {
  const seen = new Set(known.map((e) => e.seq));
  const fresh = incoming.filter((e) => !seen.has(e.seq) && seen.add(e.seq));
  if (!fresh.length) return known;
  return [...known, ...fresh].sort((a, b) => a.seq - b.seq);
}

export function logLevel(event) {
  if (event.event_type === "log") {
    const level = (event.data && event.data.level) || "info";
    return level === "warning" ? "warn" : level;
  }
  const t = tone(event);
  return t === "error" ? "error" : t === "warn" ? "warn" : "info";
}

export function logLines(events, level) {
  const lines = [];
  for (const e of events) {
    const lvl = logLevel(e);
    if (level !== "all" && lvl !== level) continue;
    lines.push({ seq: e.seq, level: lvl, time: e.timestamp, step: e.step_id,
                 text: `${e.event_type}${e.message ? ` · ${e.message}` : ""}` });
  }
  return lines.slice(-LOG_WINDOW);
}

export function timelineRows(events, filter) {
  return events.filter((e) => {
    if (filter.step && e.step_id !== filter.step) return false;
    if (filter.kind === "errors") return tone(e) === "error";
    if (filter.kind === "steps") return Boolean(e.step_id);
    return e.event_type !== "log" || filter.kind === "all";
  });
}

// Steps waiting for an answer: their latest user_input_required, still unanswered.
export function pendingInputs(events, detail) {
  const waiting = new Map();
  for (const e of events) {
    if (!e.step_id) continue;
    if (e.event_type === "user_input_required") waiting.set(e.step_id, e);
    else if (e.event_type === "input_received" || e.event_type === "step_succeeded" ||
             e.event_type === "step_failed") waiting.delete(e.step_id);
  }
  if (detail && FINAL.has(detail.status)) return [];
  return [...waiting.values()].map((e) => ({
    stepId: e.step_id,
    prompt: (e.data && e.data.prompt) || e.message,
    schema: (e.data && e.data.input_schema) || {},
  }));
}

// The debug pause the execution is in, if any: the next step and its resolved input.
export function debugPause(events, detail) {
  if (!detail || detail.status !== "paused" || !detail.debug) return null;
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i];
    if (e.event_type === "execution_resumed") return null;
    if (e.event_type === "execution_paused") {
      return e.data && e.data.reason === "debug"
        ? { nextStep: e.data.next_step, nextInput: e.data.next_input } : null;
    }
  }
  return null;
}

export function planSummary(plan) {
  const steps = (plan && plan.steps) || [];
  const systems = new Set(steps.map((s) => s.system).filter(Boolean));
  const modules = new Set(steps.map((s) => s.module).filter(Boolean));
  const inputs = {};
  for (const s of steps) {
    for (const [name, type] of Object.entries(s.inputsSpec || {})) {
      inputs[name] = inputs[name] || { type: String(type), steps: [] };
      inputs[name].steps.push(s.id);
    }
  }
  return { steps: steps.length, systems: [...systems], modules: [...modules], inputs };
}

export function stoppedAt(detail) {
  if (!detail || detail.status !== "stopped") return [];
  if (detail.stopped_at_steps && detail.stopped_at_steps.length) return detail.stopped_at_steps;
  return detail.current_steps || [];
}

// Milliseconds the execution has run: until now while it runs, frozen once it ends.
export function elapsedMs(detail, now) {
  if (!detail || !detail.started_at) return null;
  const start = Date.parse(detail.started_at);
  const end = detail.finished_at ? Date.parse(detail.finished_at) : now;
  return Math.max(end - start, 0);
}

export function formatMs(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60000);
  return `${m} min ${Math.round((ms % 60000) / 1000)} s`;
}

export function clock(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().slice(11, 23);
}
