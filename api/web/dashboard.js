// The auditor's dashboard: flows (Sankey and table), rates with targets and evidence,
// anomalies, EPR report downloads and a pack's lineage, all from the JSON API.

import { ApiError, Session, call, query } from "./api.js";
import { $, h, num, pct, replace, say, words } from "./dom.js";
import { mountLogin } from "./login.js";
import { PROVINCES, placeName } from "./regions.js";
import { drawSankey } from "./sankey.js";

const session = new Session("dashboard");
const MEASURES = { packs: ["Packs", "packs"], kwh: ["Energy (kWh)", "kWh"], kg: ["Mass (kg)", "kg"] };
const GROUPS = { stage: "lifecycle stage", role: "role", actor: "organisation" };
const EVIDENCE_SHOWN = 50; // items listed per side of a rate; the rest are counted
const message = $("#dash-message");

// --- filters ---

function filters() {
  const form = $("#filters");
  const value = (name) => form.elements[name].value.trim();
  return {
    by: value("by"), region: value("region"), producer: value("producer"),
    start: value("start"), end: value("end"), measure: value("measure"),
  };
}

/** The year the rates follow: the period's, if it lies within one calendar year. */
function rateYear(f) {
  const startYear = f.start ? f.start.slice(0, 4) : null;
  const endYear = f.end ? f.end.slice(0, 4) : null;
  return startYear && startYear === endYear ? startYear : null;
}

function busy(section, on) {
  section.setAttribute("aria-busy", on ? "true" : "false");
}

// --- flows ---

function flowScope(f) {
  const parts = [f.region ? placeName(f.region) : "all provinces", f.producer || "all producers"];
  if (f.start || f.end) parts.push(`${f.start || "the start"} to ${f.end || "now"}`);
  return parts.join(", ");
}

async function loadFlows(f) {
  const section = $("#flows");
  const params = { by: f.by, region: f.region, start: f.start, end: f.end, producer: f.producer, measure: f.measure };
  const q = query(params);
  busy(section, true);
  try {
    const data = await call(`/v1/flows${q}`, { key: session.key });
    const [measureName, unit] = MEASURES[f.measure];
    const format = (v) => `${num(v)} ${unit}`;
    const title = `Flows by ${GROUPS[f.by]} in ${unit}, ${flowScope(f)}`;
    drawSankey($("#sankey"), data, { label: words, format, title });
    replace($("#flow-caption"), title);
    replace($("#flow-measure"), measureName);
    const names = data.nodes.map((n) => n.name);
    const rows = data.links.map((link) => h("tr", { "data-source": names[link.source], "data-target": names[link.target] },
      h("th", { scope: "row" }, words(names[link.source])),
      h("td", {}, words(names[link.target])),
      h("td", { class: "num", "data-field": "value", "data-value": link.value }, num(link.value)),
      h("td", { class: "num", "data-field": "packs", "data-value": link.packs }, num(link.packs)),
      h("td", { class: "num", "data-field": "kwh", "data-value": link.kwh }, num(link.kwh)),
      h("td", { class: "num", "data-field": "kg", "data-value": link.kg }, num(link.kg))));
    const tbody = $("#flow-table tbody");
    if (rows.length) replace(tbody, rows);
    else replace(tbody, h("tr", {}, h("td", { colspan: 6 }, "No flows match these filters.")));
    const sum = (field) => data.links.reduce((s, l) => s + (Number(l[field]) || 0), 0);
    replace($("#flow-table tfoot"), data.links.length ? h("tr", {},
      h("th", { scope: "row", colspan: 2 }, "Total of the flows shown"),
      ["value", "packs", "kwh", "kg"].map((field) => h("td", { class: "num" }, num(sum(field))))) : []);
    // What is on screen, for anyone (or any test) that needs to know the data is current.
    section.dataset.query = q;
  } finally {
    busy(section, false);
  }
}

// --- rates ---

let rates = [];

function scopeText(scope) {
  return Object.entries(scope || {})
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => (k === "region" ? placeName(v) : k === "period" ? v : `${words(k)} ${v}`))
    .join(", ") || "everything";
}

function targetItem(t) {
  return h("li", {},
    `at least ${pct(t.threshold)} by ${t.deadline} (${t.source}): `,
    h("span", { class: `status-${t.status}` }, words(t.status)),
    t.note ? ` \u2014 ${t.note}` : "");
}

function targetList(targets) {
  if (!targets?.length) return "No target set.";
  // Targets set for other kinds of battery are listed, but folded away.
  const apply = targets.filter((t) => t.status !== "not_applicable");
  const other = targets.filter((t) => t.status === "not_applicable");
  return [
    apply.length ? h("ul", {}, apply.map(targetItem)) : null,
    other.length ? h("details", {}, h("summary", {}, `${other.length} ${other.length === 1 ? "target does" : "targets do"} not apply`),
      h("ul", {}, other.map(targetItem))) : null,
  ];
}

const BASIS = { count: "by number", kg: "by mass (kg)", kwh: "by energy (kWh)" };

function evidenceList(title, evidence) {
  if (!evidence) return null;
  const items = evidence.items || [];
  const more = (evidence.total_items ?? items.length) - Math.min(items.length, EVIDENCE_SHOWN);
  return h("div", {},
    h("h3", {}, `${title}: ${num(evidence.total_items ?? items.length, 0)} items, ${num(evidence.total_events ?? (evidence.events || []).length, 0)} events`),
    items.length ? h("ul", {}, items.slice(0, EVIDENCE_SHOWN).map((code) => h("li", {},
      h("button", { type: "button", class: "small", "data-lineage": code }, code),
      evidence.masses_kg?.[code] !== undefined ? ` ${num(evidence.masses_kg[code])} kg` : ""))) : h("p", {}, "No items."),
    more > 0 ? h("p", {}, `and ${num(more, 0)} more.`) : null,
    evidence.seqs?.length ? h("p", { class: "hint" }, `Log entries: ${evidence.seqs.slice(0, EVIDENCE_SHOWN).join(", ")}${evidence.seqs.length > EVIDENCE_SHOWN ? ", …" : ""}`) : null);
}

function showRates() {
  const name = $("#rate-name").value;
  const shown = rates.filter((r) => r.name === name);
  replace($("#rates-count"), `${shown.length} of ${rates.length} figures`);
  const rows = shown.flatMap((rate, i) => {
    const id = `evidence-${i}`;
    const toggle = h("button", { type: "button", class: "small", "aria-expanded": "false", "aria-controls": id }, "Show evidence");
    const detail = h("tr", { class: "evidence", id, hidden: true },
      h("td", { colspan: 5 }, evidenceList("Counted", rate.evidence), evidenceList("Out of", rate.denominator_evidence)));
    toggle.addEventListener("click", () => {
      const open = toggle.getAttribute("aria-expanded") === "true";
      toggle.setAttribute("aria-expanded", String(!open));
      replace(toggle, open ? "Show evidence" : "Hide evidence");
      detail.hidden = open;
    });
    const value = rate.value === null ? h("span", { title: rate.undefined_reason || "" }, "undefined") : pct(rate.value);
    return [
      h("tr", {},
        h("th", { scope: "row" }, scopeText(rate.scope), h("br"), h("span", { class: "hint" }, BASIS[rate.unit] || rate.unit), rate.value === null && rate.undefined_reason ? h("p", { class: "hint" }, rate.undefined_reason) : null),
        h("td", { class: "num" }, value),
        h("td", { class: "num" }, `${num(rate.numerator)} / ${num(rate.denominator)} ${rate.unit}`),
        h("td", {}, targetList(rate.targets)),
        h("td", {}, toggle)),
      detail,
    ];
  });
  replace($("#rate-table tbody"), rows.length ? rows : h("tr", {}, h("td", { colspan: 5 }, "No rates for these filters.")));
}

async function loadRates(f) {
  const section = $("#rates");
  busy(section, true);
  try {
    const data = await call(`/v1/rates${query({ year: rateYear(f), producer: f.producer, region: f.region })}`, { key: session.key });
    rates = data.rates || [];
    const select = $("#rate-name");
    const previous = select.value;
    const names = [...new Set(rates.map((r) => r.name))];
    replace(select, names.map((n) => h("option", { value: n }, words(n))));
    if (names.includes(previous)) select.value = previous;
    showRates();
  } finally {
    busy(section, false);
  }
}

// --- anomalies ---

async function loadAnomalies() {
  const section = $("#anomalies");
  busy(section, true);
  try {
    const data = await call("/v1/anomalies", { key: session.key });
    replace($("#anomaly-count"), `${num(data.count, 0)} findings${data.count > data.data.length ? `, the first ${data.data.length} shown` : ""}.`);
    replace($("#anomaly-table tbody"), data.data.length ? data.data.map((a) => h("tr", {},
      h("td", { class: `severity-${a.severity}` }, a.severity),
      h("td", {}, words(a.kind), a.check ? h("p", { class: "hint" }, words(a.check)) : null),
      h("td", {}, a.summary),
      h("td", {}, (a.items || []).slice(0, 5).map((code) => h("button", { type: "button", class: "small", "data-lineage": code }, code)))))
      : h("tr", {}, h("td", { colspan: 4 }, "No anomalies found.")));
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 403) throw error;
    replace($("#anomaly-count"), "Anomalies are shown to auditors only.");
    replace($("#anomaly-table tbody"));
  } finally {
    busy(section, false);
  }
}

// --- EPR report ---

async function downloadReport(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const out = $("#epr-message");
  const producer = form.elements.producer.value.trim();
  const year = form.elements.year.value.trim();
  const format = form.elements.format.value;
  if (!producer || !/^\d{4}$/.test(year)) {
    say(out, "Enter the producer's organisation id and a year such as 2024.", "error");
    (producer ? form.elements.year : form.elements.producer).focus();
    return;
  }
  say(out, "Preparing the report…", "info");
  try {
    const path = `/v1/reports/epr/${encodeURIComponent(producer)}/${year}${query({ format })}`;
    const response = await call(path, { key: session.key, raw: true });
    const blob = await response.blob();
    const name = `epr-${producer}-${year}.${format}`;
    // The report needs the API key, so a plain link cannot fetch it: save the fetched copy.
    const url = URL.createObjectURL(blob);
    const link = h("a", { href: url, download: name }, name);
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    say(out, `Downloaded ${name}.`, "ok");
  } catch (error) {
    say(out, error.message, "error");
  }
}

// --- lineage ---

function lineageTable(caption, head, rows) {
  return h("div", { class: "table-wrap" }, h("table", { class: "wide" },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: head.length }, "None recorded.")))));
}

const when = (iso) => (iso ? String(iso).replace("T", " ").slice(0, 16) : "–");

async function showLineage(code) {
  const out = $("#lineage-message");
  const result = $("#lineage-result");
  $("#lineage-code").value = code;
  say(out, `Loading the lineage of ${code}…`, "info");
  try {
    const data = await call(`/v1/lineage/${encodeURIComponent(code)}`, { key: session.key });
    say(out, "");
    const step = (n) => h("tr", {},
      h("td", { class: "num" }, n.depth), h("td", {}, words(n.kind)), h("td", {}, words(n.type)),
      h("td", { class: "code" }, n.kind === "step" ? "" : n.node), h("td", {}, n.actor || "–"),
      h("td", {}, when(n.time)), h("td", { class: "num" }, num(n.attributed_kg ?? n.kg)));
    const flowHead = ["Depth", "Kind", "Type", "Item or lot", "Organisation", "Time", "kg"];
    replace(result,
      h("h3", {}, `Lineage of ${data.item}`),
      h("p", {}, "Lives: ", (data.lives.data || []).join(" \u2192 ") || data.item),
      h("p", {}, "Parts: ", (data.parts.data || []).map((p) => p.code || p.node || p).join(", ") || "none recorded"),
      lineageTable("Custody", ["Organisation", "Role", "Province", "From", "To"],
        data.custody.data.map((c) => h("tr", {}, h("td", {}, c.actor), h("td", {}, words(c.role)),
          h("td", {}, placeName(c.region)), h("td", {}, when(c.since)), h("td", {}, when(c.until))))),
      lineageTable("What it became (downstream)", flowHead, data.downstream.data.map(step)),
      lineageTable("Where it came from (upstream)", flowHead, data.upstream.data.map(step)));
    result.scrollIntoView({ block: "start" });
  } catch (error) {
    replace(result);
    say(out, error.message, "error");
  }
}

// --- the page ---

async function refresh() {
  const f = filters();
  say(message, "");
  const results = await Promise.allSettled([loadFlows(f), loadRates(f)]);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) say(message, failed.reason.message, "error");
}

function setUp() {
  const region = $("#f-region");
  for (const [code, [english, chinese]] of Object.entries(PROVINCES)) {
    region.append(h("option", { value: code }, `${english} (${chinese})`));
  }
  $("#epr-year").value = String(new Date().getFullYear() - 1);
  $("#filters").addEventListener("submit", (event) => {
    event.preventDefault();
    refresh();
  });
  $("#rate-name").addEventListener("change", showRates);
  $("#epr-form").addEventListener("submit", downloadReport);
  $("#lineage-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const code = $("#lineage-code").value.trim();
    if (code) showLineage(code);
    else say($("#lineage-message"), "Enter a battery code or lot id.", "error");
  });
  // Item buttons in the rates' evidence and the anomalies open the lineage explorer.
  $("#content").addEventListener("click", (event) => {
    const button = event.target.closest("[data-lineage]");
    if (button) showLineage(button.dataset.lineage);
  });
}

setUp();
mountLogin({
  session,
  check: (key) => call("/v1/flows?by=stage", { key }),
  onIn: async () => {
    await refresh();
    loadAnomalies().catch((error) => say(message, error.message, "error"));
  },
});
