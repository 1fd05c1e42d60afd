// A form built from a JSON Schema object (a wait_input step's input_schema): one field per
// property, typed; anything the form cannot show as a field is edited as JSON.

import { t } from "../i18n.js";
import { html } from "../lib.js";

function typed(type, raw) {
  if (type === "integer") return raw === "" ? undefined : parseInt(raw, 10);
  if (type === "number") return raw === "" ? undefined : Number(raw);
  return raw;
}

function Field({ name, spec, required, value, onChange }) {
  const label = html`<span>${spec.title || name}${required ? " *" : ""}</span>`;
  const id = `field-${name}`;
  if (spec.type === "boolean") {
    return html`<label class="check" for=${id}>
      <input id=${id} type="checkbox" name=${name} checked=${Boolean(value)}
             onChange=${(e) => onChange(e.target.checked)} />${label}</label>`;
  }
  if (Array.isArray(spec.enum)) {
    return html`<label for=${id}>${label}
      <select id=${id} name=${name} value=${value ?? ""}
              onChange=${(e) => onChange(spec.enum[e.target.selectedIndex - 1])}>
        <option value="">–</option>
        ${spec.enum.map((v) => html`<option value=${String(v)}>${String(v)}</option>`)}
      </select></label>`;
  }
  if (["string", "integer", "number"].includes(spec.type)) {
    const kind = spec.type === "string" ? "text" : "number";
    return html`<label for=${id}>${label}
      <input id=${id} type=${kind} name=${name} value=${value ?? ""}
             step=${spec.type === "integer" ? "1" : "any"}
             onInput=${(e) => onChange(typed(spec.type, e.target.value))} /></label>`;
  }
  return html`<label for=${id}>${label} <span class="muted">(JSON)</span>
    <textarea id=${id} name=${name} rows="3"
              onInput=${(e) => { try { onChange(JSON.parse(e.target.value)); } catch { /* typing */ } }}>
    </textarea></label>`;
}

export function SchemaForm({ schema, value, onChange }) {
  const props = (schema && schema.properties) || {};
  const required = new Set((schema && schema.required) || []);
  if (!Object.keys(props).length) {
    return html`<label>${t("answerJson")}
      <textarea name="answer" rows="4" data-testid="answer-json"
                onInput=${(e) => { try { onChange(JSON.parse(e.target.value)); } catch { /* typing */ } }}>
      </textarea></label>`;
  }
  return html`<div class="schema-form">
    ${Object.entries(props).map(([name, spec]) => html`
      <${Field} key=${name} name=${name} spec=${spec || {}} required=${required.has(name)}
                value=${value[name]}
                onChange=${(v) => {
                  const next = { ...value, [name]: v };
                  if (v === undefined) delete next[name];
                  onChange(next);
                }} />`)}
  </div>`;
}
