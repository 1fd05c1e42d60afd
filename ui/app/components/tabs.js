// The center column's tab bar: the run view, the executions list, the workflows list.

import { t } from "../i18n.js";
import { html } from "../lib.js";

export const TABS = ["run", "executions", "workflows"];
const ICONS = { run: "⏱", executions: "🗂", workflows: "🧩" };

export function TabBar({ tab, onTab }) {
  return html`
    <nav class="tabs" role="tablist" data-testid="tabs">
      ${TABS.map((name) => html`
        <button role="tab" data-testid=${`tab-${name}`} aria-selected=${tab === name}
                class=${tab === name ? "active" : ""} onClick=${() => onTab(name)}>
          ${ICONS[name]} ${t(`tabs.${name}`)}</button>`)}
    </nav>`;
}
