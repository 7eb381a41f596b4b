// Small DOM helpers shared by the pages.
// Everything from the service is put in the page as text, never as HTML, so no value
// (an organisation's name, an anomaly's summary) can inject markup.

/**
 * Create an element: h("a", {href: "/x", class: "btn"}, "text", child, ...).
 * Attributes that are null, undefined or false are left out; `true` sets an empty one.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/** Append strings (as text), nodes and nested arrays of them; skip null and false. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace an element's content. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export const $ = (selector, root = document) => root.querySelector(selector);

/** Numbers as people read them: thousands separated, at most `digits` decimals. */
export function num(value, digits = 3) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return new Intl.NumberFormat("en", { maximumFractionDigits: digits }).format(value);
}

/** A share as a percentage with one decimal, or a dash when undefined. */
export function pct(value) {
  if (value === null || value === undefined) return "–";
  return `${num(value * 100, 1)} %`;
}

/** snake_case vocabulary of the service ("cascade_use") as words ("cascade use"). */
export const words = (value) => String(value ?? "").replaceAll("_", " ");

/** Show a message in a live region: kind is "ok", "error" or "info". */
export function say(region, text, kind = "info") {
  region.className = `message ${kind}`;
  region.hidden = !text;
  replace(region, text || "");
}

/** A value for the Idempotency-Key header (letters, digits, "-" only). */
export function newKey(prefix = "web") {
  const random = globalThis.crypto?.randomUUID
    ? crypto.randomUUID()
    : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  return `${prefix}-${random}`;
}
