// The HTTP API as the page uses it: the envelope unwrapped, every failure a Problem with
// the API's category (validation, not_found, conflict, permission, rate_limit,
// unavailable, internal) or "network" when the API could not be reached.

const KEY_STORE = "runledger.apiKey";

export class Problem extends Error {
  constructor({ status = 0, category = "internal", code = "", message = "", details = [] }) {
    super(message);
    Object.assign(this, { status, category, code, details: details || [] });
  }
}

export function apiKey() {
  return localStorage.getItem(KEY_STORE) || "";
}

export function setApiKey(key) {
  if (key) localStorage.setItem(KEY_STORE, key);
  else localStorage.removeItem(KEY_STORE);
}

function headers(extra = {}) {
  const key = apiKey();
  return { ...extra, ...(key ? { Authorization: `Bearer ${key}` } : {}) };
}

export async function request(method, path, body) {
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new Problem({ category: "network", code: "unreachable",
                        message: `the API could not be reached (${err.message})` });
  }
  let doc = null;
  try {
    doc = await response.json();
  } catch {
    doc = null;
  }
  if (!response.ok || !doc || doc.success === false) {
    const error = (doc && doc.error) || {};
    throw new Problem({
      status: response.status,
      category: error.category || (response.status >= 500 ? "unavailable" : "internal"),
      code: error.code || String(response.status),
      message: error.message || response.statusText || "request failed",
      details: error.details,
    });
  }
  return doc.data;
}

export const get = (path) => request("GET", path);
export const post = (path, body = {}) => request("POST", path, body);

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    for (const one of Array.isArray(v) ? v : [v]) { // an array repeats the parameter
      if (one !== undefined && one !== null && one !== "") q.append(k, one);
    }
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

export function socketUrl(eid, afterSeq) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const key = apiKey();
  const params = query({ after_seq: afterSeq, follow: "true", token: key || undefined });
  return `${scheme}://${location.host}/ws/v1/executions/${encodeURIComponent(eid)}${params}`;
}

// Each problem detail as one line naming where it points (a step, a field, an item).
export function detailLines(problem) {
  return (problem.details || []).map((d) => {
    if (typeof d !== "object" || d === null) return String(d);
    const { field, step, what } = detailParts(d);
    const where = field && step ? `${field} (${step})` : field || step;
    return where ? `${where}: ${what}` : what;
  });
}

// One problem detail: the field and the step (or node) it points at, and what is wrong.
export function detailParts(d) {
  return {
    field: d.field || (Array.isArray(d.loc) ? d.loc.join(".") : ""),
    step: d.step_id || d.node_id || "",
    what: d.problem || d.msg || d.message || JSON.stringify(d),
  };
}
