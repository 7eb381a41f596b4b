// The recycler's work page: scan or type a code, accept handovers addressed to the
// organisation, record inspections and recycling steps. Every write carries an
// Idempotency-Key, so pressing a button twice (or retrying after a dropped connection)
// records the event once.

import { Session, call } from "./api.js";
import { $, h, newKey, num, replace, say, words } from "./dom.js";
import { mountLogin } from "./login.js";
import { placeName } from "./regions.js";
import { newLotId } from "./lots.js";
import { mountScanner } from "./scanner.js";

const session = new Session("work");
const MATERIALS = [
  "black_mass", "steel_scrap", "copper_scrap", "aluminium_scrap", "lead_scrap", "lead",
  "lithium_carbonate", "lithium_hydroxide", "nickel_sulphate", "cobalt_sulphate", "manganese_sulphate",
];
let rowCount = 0;

// --- the current battery ---

async function showItem(code) {
  const box = $("#current");
  box.hidden = false;
  replace(box, `Looking up ${code}…`);
  $("#i-item").value = code;
  try {
    const item = await call(`/v1/items/${encodeURIComponent(code)}`, { key: session.key });
    replace(box,
      h("p", {}, h("strong", {}, "Current battery: "), h("span", { class: "code" }, item.id)),
      h("p", {}, `${words(item.kind)}, ${words(item.status)}; held by `, h("strong", { id: "current-custodian" }, item.custodian),
        ` in ${placeName(item.region)}`, item.mass_kg ? `; ${num(item.mass_kg)} kg` : "",
        item.soh_pct !== null && item.soh_pct !== undefined ? `; state of health ${num(item.soh_pct, 1)} %` : ""),
      item.pending_handover ? h("p", {}, "A handover of this battery is pending.") : null);
    const firstInput = $("#r-inputs .rows input[name=item]");
    if (firstInput && !firstInput.value) {
      firstInput.value = item.id;
      const mass = $("#r-inputs .rows input[name=mass_kg]");
      if (mass && item.mass_kg) mass.value = item.mass_kg;
    }
  } catch (error) {
    replace(box, h("p", {}, h("strong", {}, `${code}: `), error.message));
  }
}

// --- handovers ---

async function loadHandovers() {
  const list = $("#handover-list");
  const out = $("#handover-message");
  list.setAttribute("aria-busy", "true");
  try {
    const page = await call("/v1/handovers/pending?direction=incoming", { key: session.key });
    const rows = page.data.map((handover) => {
      const accept = h("button", { type: "button", class: "primary", "data-digest": handover.digest,
        "aria-label": `Accept the handover from ${handover.sender} of ${handover.items.join(", ")}` }, "Accept");
      accept.addEventListener("click", () => acceptHandover(handover, accept));
      return h("li", { "data-digest": handover.digest },
        h("p", {}, h("strong", {}, `From ${handover.sender}`), `, offered ${String(handover.created).slice(0, 10)}`,
          handover.transfer_ownership ? " (ownership too)" : ""),
        h("p", {}, `${handover.items.length} ${handover.items.length === 1 ? "item" : "items"}: `,
          handover.items.map((code, i) => [i ? ", " : "", h("span", { class: "code" }, code)])),
        accept);
    });
    if (rows.length) replace(list, rows);
    else replace(list, h("li", {}, "No handovers are waiting for you."));
  } catch (error) {
    say(out, error.message, "error");
  } finally {
    list.setAttribute("aria-busy", "false");
  }
}

async function acceptHandover(handover, button) {
  const out = $("#handover-message");
  button.disabled = true;
  say(out, "Accepting…", "info");
  try {
    // One key per handover: accepting twice is the same request, recorded once.
    const receipt = await call(`/v1/handovers/${handover.digest}/accept`, {
      method: "POST", key: session.key, body: {},
      headers: { "Idempotency-Key": `accept-${handover.digest}` },
    });
    say(out, `Accepted: your organisation now holds ${handover.items.join(", ")} (log entry ${receipt.seq}).`, "ok");
    await loadHandovers();
    showItem(handover.items[0]);
  } catch (error) {
    button.disabled = false;
    say(out, `Not accepted: ${error.message}`, "error");
  }
}

// --- forms ---

/** Submit a form's event once per attempt: the key is kept until it succeeds or is edited. */
function writer(form, path, out, build, done) {
  form.addEventListener("input", () => { delete form.dataset.key; });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let body;
    try {
      body = build(form);
    } catch (error) {
      say(out, error.message, "error");
      return;
    }
    form.dataset.key ??= newKey("web");
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    say(out, "Recording…", "info");
    try {
      const receipt = await call(path, {
        method: "POST", key: session.key, body, headers: { "Idempotency-Key": form.dataset.key },
      });
      delete form.dataset.key;
      const late = receipt.late_working_days ? ` It was reported ${receipt.late_working_days} working days late.` : "";
      say(out, `${done(body)} (log entry ${receipt.seq}).${late}`, "ok");
    } catch (error) {
      say(out, `Not recorded: ${error.message}`, "error");
    } finally {
      button.disabled = false;
    }
  });
}

function number(input, what, { required = true } = {}) {
  const text = input.value.trim();
  if (!text && !required) return undefined;
  const value = Number(text);
  if (!text || !Number.isFinite(value) || value < 0) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
    throw new Error(`Enter ${what} as a number (0 or more).`);
  }
  input.removeAttribute("aria-invalid");
  return value;
}

function code(input) {
  const value = input.value.trim().toUpperCase();
  if (!value) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
    throw new Error("Enter the battery code or lot id.");
  }
  input.removeAttribute("aria-invalid");
  return value;
}

function inspection(form) {
  // namedItem: `form.elements.item` is the collection's item() method, not the field.
  const field = (name) => form.elements.namedItem(name);
  const item = code(field("item"));
  const soh = number(field("soh_pct"), "the state of health in %");
  if (soh > 100) throw new Error("The state of health is a percentage: 0 to 100.");
  const body = { item, soh_pct: soh, grade: field("grade").value };
  const capacity = number(field("remaining_capacity_kwh"), "the remaining capacity in kWh", { required: false });
  if (capacity !== undefined) body.remaining_capacity_kwh = capacity;
  return body;
}

function inputRow() {
  rowCount += 1;
  const n = rowCount;
  const remove = h("button", { type: "button", class: "small", "aria-label": `Remove input ${n}` }, "Remove");
  const row = h("div", { class: "grid" },
    h("div", {}, h("label", { for: `r-in-item-${n}` }, "Battery code or lot id"),
      h("input", { id: `r-in-item-${n}`, name: "item", autocomplete: "off", spellcheck: "false", class: "code" })),
    h("div", {}, h("label", { for: `r-in-kg-${n}` }, "Mass (kg)"),
      h("input", { id: `r-in-kg-${n}`, name: "mass_kg", type: "number", min: "0", step: "0.001", inputmode: "decimal" })),
    h("div", {}, remove));
  remove.addEventListener("click", () => row.remove());
  return row;
}

function outputRow() {
  rowCount += 1;
  const n = rowCount;
  const lot = newLotId();
  const remove = h("button", { type: "button", class: "small", "aria-label": `Remove output ${n}` }, "Remove");
  const row = h("div", { class: "grid", "data-lot": lot },
    h("div", {}, h("label", { for: `r-out-material-${n}` }, "Material"),
      h("select", { id: `r-out-material-${n}`, name: "material" }, MATERIALS.map((m) => h("option", { value: m }, words(m))))),
    h("div", {}, h("label", { for: `r-out-kg-${n}` }, "Mass (kg)"),
      h("input", { id: `r-out-kg-${n}`, name: "mass_kg", type: "number", min: "0", step: "0.001", inputmode: "decimal" })),
    h("div", {}, h("p", { class: "hint" }, "New lot ", h("span", { class: "code" }, lot)), remove));
  remove.addEventListener("click", () => row.remove());
  return row;
}

function recycling(form) {
  const inputs = [...form.querySelectorAll("#r-inputs .rows > .grid")].map((row) => ({
    item: code(row.querySelector("[name=item]")),
    mass_kg: number(row.querySelector("[name=mass_kg]"), "each input's mass in kg"),
  }));
  const outputs = [...form.querySelectorAll("#r-outputs .rows > .grid")].map((row) => ({
    lot: {
      id: row.dataset.lot,
      material: row.querySelector("[name=material]").value,
      mass_kg: number(row.querySelector("[name=mass_kg]"), "each output's mass in kg"),
    },
  }));
  if (!inputs.length || !outputs.length) throw new Error("A recycling step needs at least one input and one output.");
  return { inputs, outputs, reagents_kg: number(form.elements.namedItem("reagents_kg"), "the process chemicals in kg") };
}

function setUp() {
  mountScanner($("#scanner"), { action: "Use this code", idPrefix: "work-scan", onResult: ({ code: c }) => showItem(c) });
  $("#handovers-refresh").addEventListener("click", loadHandovers);
  $("#r-add-input").addEventListener("click", () => $("#r-inputs .rows").append(inputRow()));
  $("#r-add-output").addEventListener("click", () => $("#r-outputs .rows").append(outputRow()));
  $("#r-inputs .rows").append(inputRow());
  $("#r-outputs .rows").append(outputRow());
  writer($("#inspection-form"), "/v1/inspections", $("#inspection-message"), inspection,
    (body) => {
      showItem(body.item);
      return `Inspection of ${body.item} recorded: ${body.soh_pct} %, grade ${body.grade}`;
    });
  writer($("#recycling-form"), "/v1/recyclings", $("#recycling-message"), recycling, (body) => {
    // New lot ids for the next step: a lot id names one lot only.
    for (const row of document.querySelectorAll("#r-outputs .rows > .grid")) row.replaceWith(outputRow());
    return `Recycling step recorded: ${body.outputs.map((o) => o.lot.id).join(", ")}`;
  });
}

setUp();
mountLogin({
  session,
  check: (key) => call("/v1/handovers/pending?direction=incoming&limit=1", { key }),
  onIn: loadHandovers,
  onOut: () => replace($("#handover-list")),
});
