// The analytics filters the page shares: the executions list, the metrics and charts and the
// audit export all read the same selection, kept in the address bar so a link reopens it.
// Pure functions: the form's strings in, the API's query parameters / export body out.

export const FILTER_FIELDS = ["execution_id", "workflow_id", "system", "module", "status",
                              "labels", "from", "to"];
export const EMPTY_FILTERS = Object.fromEntries(FILTER_FIELDS.map((f) => [f, ""]));
export const STATUSES = ["pending", "queued", "running", "paused", "succeeded", "failed", "stopped"];

// "team=blue, env=prod" (also "team:blue", one per line) → {labels: {team: "blue", …}, bad: []}
export function parseLabels(text) {
  const labels = {};
  const bad = [];
  for (const part of (text || "").split(/[,\n]/)) {
    const item = part.trim();
    if (!item) continue;
    const m = item.match(/^([^=:\s]+)\s*[=:]\s*(.+)$/);
    if (m) labels[m[1]] = m[2].trim();
    else bad.push(item);
  }
  return { labels, bad };
}

export function labelText(labels) {
  return Object.entries(labels || {}).map(([k, v]) => `${k}=${v}`).join(", ");
}

// A datetime-local value (the browser's local time) as an ISO instant; "" stays "".
export function isoOf(local) {
  if (!local) return "";
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString();
}

// The filters every read takes, but labels (their shape differs between a query and a body).
function common(f) {
  const out = {};
  for (const field of ["execution_id", "workflow_id", "system", "module", "status"]) {
    if (f[field]) out[field] = f[field].trim();
  }
  if (f.from) out.from = isoOf(f.from);
  if (f.to) out.to = isoOf(f.to);
  return out;
}

// The query parameters of GET /executions, /tracking/*, /stats/*: labels as label=k:v, repeated.
export function filterParams(f) {
  const out = common(f);
  const pairs = Object.entries(parseLabels(f.labels).labels).map(([k, v]) => `${k}:${v}`);
  if (pairs.length) out.label = pairs;
  return out;
}

// The `filters` object of POST /tracking/export: labels as an object.
export function exportFilters(f) {
  const out = common(f);
  const { labels } = parseLabels(f.labels);
  if (Object.keys(labels).length) out.labels = labels;
  return out;
}

export function activeFilters(f) {
  return FILTER_FIELDS.filter((field) => f[field]).map((field) => [field, f[field]]);
}

export function filtersFromUrl(search = location.search) {
  const params = new URLSearchParams(search);
  const out = { ...EMPTY_FILTERS };
  for (const field of FILTER_FIELDS) out[field] = params.get(field) || "";
  return out;
}

// Writes the filters into `url` (a URL), dropping the empty ones.
export function filtersToUrl(url, f) {
  for (const field of FILTER_FIELDS) {
    if (f[field]) url.searchParams.set(field, f[field]);
    else url.searchParams.delete(field);
  }
  return url;
}

// The bucket size that suits the window: minutes for a few hours, hours up to a week.
export function autoInterval(f) {
  const from = f.from ? Date.parse(isoOf(f.from)) : Date.now() - 86_400_000;
  const to = f.to ? Date.parse(isoOf(f.to)) : Date.now();
  const span = to - from;
  if (span <= 3 * 3_600_000) return "minute";
  if (span <= 7 * 86_400_000) return "hour";
  return "day";
}

// Local "MM-DD HH:mm:ss": fixed width, no words, the same in every language.
export function localTime(iso, withSeconds = true) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n) => String(n).padStart(2, "0");
  const time = `${p(d.getHours())}:${p(d.getMinutes())}${withSeconds ? `:${p(d.getSeconds())}` : ""}`;
  return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${time}`;
}

export function percent(ratio) {
  return ratio === null || ratio === undefined || Number.isNaN(ratio) ? "–"
    : `${(ratio * 100).toFixed(1)} %`;
}
