// The passport page's "record verified" badge and the battery's life story.
// The page (/p/{code}) embeds its passport JSON; this script checks the record proof in
// the browser (verify.js) rather than trusting the server's word, then shows what the JSON
// says about the battery's custody, earlier lives and the materials it became.

import { h, num, replace, words } from "./dom.js";
import { placeName } from "./regions.js";
import { ProofError, UncheckableError, verifyPassport } from "./verify.js";

const DATE = new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short", year: "numeric" });

function when(iso) {
  if (!iso) return null;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : h("time", { datetime: iso }, DATE.format(date));
}

/** The passport JSON: embedded in the page, or asked of the same address as JSON. */
async function passportData() {
  const embedded = document.getElementById("passport-data");
  if (embedded) {
    const doc = JSON.parse(embedded.textContent || "{}");
    return doc && doc.code ? doc : null; // {} is the "no such battery" page
  }
  const response = await fetch(window.location.href, { headers: { Accept: "application/json" } });
  return response.ok ? response.json() : null;
}

// --- the badge ---

function badge() {
  const el = h("section", {
    class: "verdict unchecked record-check", id: "record-check", "data-state": "checking",
    role: "status", "aria-live": "polite", "aria-labelledby": "record-check-heading",
  });
  show(el, "checking", "Checking the record…",
    "Your browser is checking this battery's record against the signed log.");
  return el;
}

function show(el, state, heading, ...lines) {
  el.dataset.state = state;
  el.classList.remove("genuine", "not-genuine", "unchecked");
  el.classList.add({ verified: "genuine", failed: "not-genuine" }[state] || "unchecked");
  replace(el, h("strong", { id: "record-check-heading" }, heading), lines.filter(Boolean).map((l) => h("p", {}, l)));
}

async function check(el, doc) {
  try {
    const result = await verifyPassport(doc);
    el.dataset.signature = result.signature;
    const signature = result.signature === "checked"
      ? `The log's key (${result.keys[0]}) signed that state of the log; the signature was checked here.`
      : "The log's signature was not checked by this browser (it cannot check Ed25519 signatures); the record's place in the log was.";
    show(el, "verified", "\u2713 Record verified",
      `Your browser checked that this battery's latest record is entry ${num(result.index, 0)} of an append-only log of ${num(Number(result.size), 0)} entries.`,
      signature);
    return result;
  } catch (error) {
    if (error instanceof UncheckableError) {
      show(el, "unchecked", "Record not checked", error.message);
    } else if (error instanceof ProofError) {
      show(el, "failed", "\u2717 Record not verified", error.message,
        "Do not rely on this page: the record shown may have been changed. Ask the issuer of the battery.");
    } else {
      show(el, "failed", "\u2717 Record not verified", "The record's proof could not be read.");
    }
    return null;
  }
}

// --- the life story ---

function custodyList(doc) {
  // A custody chain, if the passport carries one: [{role, region, since, until}].
  const chain = doc.custody || doc.custody_chain || [];
  if (!Array.isArray(chain) || !chain.length) return null;
  return h("ol", { class: "timeline" }, chain.map((step) =>
    h("li", {},
      h("strong", {}, `Held by a ${words(step.role || step.actorRole || "holder")}`),
      ` in ${placeName(step.region)}`,
      step.since || step.eventTime ? [", from ", when(step.since || step.eventTime)] : null,
      step.until ? [" to ", when(step.until)] : null)));
}

function latestRecord(doc, entry) {
  const body = entry?.body;
  if (!body) return null;
  const type = body.data?.type;
  return h("li", {},
    h("strong", {}, `Latest record: ${words(type || entry.kind)}`),
    ", ", when(body.event_time), ` in ${placeName(body.region)}`,
    doc.holder?.role ? `; now held by a ${words(doc.holder.role)} in ${placeName(doc.holder.region)}` : null);
}

function materials(doc, entry) {
  // Lots the battery became: from the passport if it lists them, else from its latest
  // record when that was a dismantling or recycling step.
  let lots = Array.isArray(doc.materials) ? doc.materials : [];
  if (!lots.length && Array.isArray(entry?.body?.data?.outputs)) {
    lots = entry.body.data.outputs.map((o) => o.lot || o).filter(Boolean);
  }
  if (!lots.length) return null;
  return h("ul", {}, lots.map((lot) => h("li", {},
    `${words(lot.material || lot.type || "material")}: ${num(lot.mass_kg ?? lot.kg)} kg`,
    lot.id || lot.node ? [" (", h("span", { class: "code" }, lot.id || lot.node), ")"] : null)));
}

function codeLink(code) {
  return h("a", { href: `/p/${encodeURIComponent(code)}`, class: "code" }, code);
}

function story(doc, entry) {
  const custody = custodyList(doc);
  const latest = latestRecord(doc, entry);
  const made = materials(doc, entry);
  const earlier = doc.earlier_lives || [];
  return h("section", { id: "life", "aria-labelledby": "life-heading" },
    h("h2", { id: "life-heading" }, "Life of this battery"),
    custody ? [h("h3", {}, "Custody"), custody] : null,
    latest ? h("ol", { class: "timeline" }, latest) : null,
    h("h3", {}, "Earlier lives"),
    earlier.length
      ? h("ul", {}, earlier.map((code) => h("li", {}, "Was ", codeLink(code), " before it was re-coded for another use")))
      : h("p", {}, "None: this is the battery's first life."),
    doc.successor ? h("p", {}, "Re-coded for its next life as ", codeLink(doc.successor), ".") : null,
    h("h3", {}, "Materials it became"),
    made || h("p", {}, "None recorded."));
}

async function main() {
  let doc;
  try {
    doc = await passportData();
  } catch {
    doc = null;
  }
  if (!doc) return;
  const page = document.querySelector("main") || document.body;
  const anchor = page.querySelector(".verdict") || page.querySelector(".code") || page.firstElementChild;
  const el = badge();
  if (anchor) anchor.after(el);
  else page.prepend(el);
  const result = await check(el, doc);
  // The story reads the record only once it is verified; otherwise what the JSON says.
  const life = story(doc, result ? result.entry : null);
  const proofHeading = [...page.querySelectorAll("h2")].find((x) => /proof/i.test(x.textContent));
  if (proofHeading) proofHeading.closest("section").before(life);
  else page.append(life);
}

main();
