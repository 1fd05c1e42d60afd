// Every visible string of the page, in English and Chinese; t("key", {vars}) picks the
// language the user chose (kept in localStorage), English when a key has no translation.

import { messages } from "./messages.js";

const STORE = "runledger.lang";
let current = localStorage.getItem(STORE) || (navigator.language.startsWith("zh") ? "zh" : "en");

export function language() {
  return current;
}

export function setLanguage(lang) {
  current = messages[lang] ? lang : "en";
  localStorage.setItem(STORE, current);
  document.documentElement.lang = current;
}

function lookup(table, key) {
  return key.split(".").reduce((node, part) => (node && typeof node === "object" ? node[part] : undefined), table);
}

export function t(key, vars = {}) {
  let text = lookup(messages[current], key);
  if (typeof text !== "string") text = lookup(messages.en, key);
  if (typeof text !== "string") text = key.split(".").pop();
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

document.documentElement.lang = current;
