// Wizard, command workload: a form generated from the template's param specs, checked like the server.

import { field, h } from "../dom.js";
import { hardwareRow } from "./wizard_params.js";

export const title = "Parameters";

const INT = /^[+-]?\d+$/;

function shown(value) {
  return value === null || value === undefined ? "" : String(value);
}

/** The form's starting values: each param's default (a checkbox holds a boolean, the rest text). */
export function initialValues(spec) {
  const values = {};
  for (const [name, p] of Object.entries(spec.params || {})) values[name] = p.type === "bool" ? Boolean(p.default) : shown(p.default);
  return values;
}

function bounds(p) {
  const lo = p.min ?? null;
  const hi = p.max ?? null;
  if (lo !== null && hi !== null) return `from ${lo} to ${hi}`;
  if (lo !== null) return `at least ${lo}`;
  return hi !== null ? `at most ${hi}` : "";
}

function matches(pattern, value) {
  try {
    return new RegExp(`^(?:${pattern})$`, "u").test(value);
  } catch {
    return true; // a pattern JavaScript cannot read: the server checks it
  }
}

/** What is wrong with one value, mirroring the server's checks; "" when fine or left blank. */
export function paramError(name, p, raw) {
  const value = String(raw ?? "").trim();
  if (p.type === "bool") return "";
  // Without a default the request must give a value.
  if (!value) return p.default === null || p.default === undefined ? `${name} is required.` : "";
  if (p.type === "str" && p.pattern && !matches(p.pattern, String(raw))) return `${name} must match ${p.pattern}.`;
  if (p.type === "choice") return (p.choices || []).map(String).includes(value) ? "" : `${name} must be one of ${(p.choices || []).join(", ")}.`;
  if (p.type !== "int" && p.type !== "float") return "";
  const n = Number(value);
  const range = bounds(p);
  const what = p.type === "int" ? "a whole number" : "a number";
  if ((p.type === "int" && !INT.test(value)) || !Number.isFinite(n) || (p.min != null && n < p.min) || (p.max != null && n > p.max)) {
    return `${name} must be ${what}${range ? ` ${range}` : ""}.`;
  }
  return "";
}

export function fieldErrors(state) {
  const errors = {};
  for (const [name, p] of Object.entries(state.command?.params || {})) {
    const msg = paramError(name, p, state.paramValues[name]);
    if (msg) errors[name] = msg;
  }
  return errors;
}

export function validate(state) {
  const first = Object.values(fieldErrors(state))[0];
  return first ? `Fix the highlighted parameters: ${first}` : "";
}

/** The params as the request sends them: typed values; a blank field is left out (its default applies). */
export function commandParams(state) {
  const out = {};
  for (const [name, p] of Object.entries(state.command?.params || {})) {
    const raw = state.paramValues[name];
    if (p.type === "bool") {
      out[name] = Boolean(raw);
      continue;
    }
    const value = String(raw ?? "").trim();
    if (!value && p.type !== "str") continue;
    if (p.type === "int" || p.type === "float") out[name] = Number(value);
    else if (p.type === "choice") out[name] = (p.choices || []).find((c) => String(c) === value) ?? value;
    else if (raw !== "" || p.default === "") out[name] = String(raw);
  }
  return out;
}

/** Server error fields ("command.params.steps", "params.steps") → the param's name, if it is one. */
export function paramOfField(state, serverField) {
  const name = String(serverField || "").replace(/^(body\.)?(command\.)?params\./, "");
  return name !== serverField && name in (state.command?.params || {}) ? name : "";
}

function control(name, p, value) {
  if (p.type === "bool") return h("input", { type: "checkbox", name, checked: Boolean(value) });
  if (p.type === "choice") {
    const select = h("select", { name }, (p.choices || []).map((c) => h("option", { value: String(c), text: String(c) })));
    select.value = value;
    return select;
  }
  if (p.type === "int" || p.type === "float") {
    return h("input", { type: "number", name, inputmode: p.type === "int" ? "numeric" : "decimal", step: p.type === "int" ? "1" : "any", min: p.min ?? null, max: p.max ?? null, value });
  }
  return h("input", { type: "text", name, value, autocomplete: "off", spellcheck: false });
}

function paramField(state, name, p) {
  const input = control(name, p, state.paramValues[name]);
  const hint = [p.description, bounds(p), p.default !== null && p.default !== undefined ? `default ${p.default}` : ""].filter(Boolean).join(" · ");
  if (p.type === "bool") {
    const f = field(name, input, hint);
    // A checkbox reads best with its label beside it.
    f.wrap.querySelector("label").replaceWith(h("label", { class: "check", for: input.id }, input, name));
    f.wrap.dataset.param = name;
    input.addEventListener("change", () => { state.paramValues[name] = input.checked; });
    if (state.serverErrors?.[`param:${name}`]) f.setError(state.serverErrors[`param:${name}`]);
    return f.wrap;
  }
  const f = field(name, input, hint);
  f.wrap.dataset.param = name;
  const check = () => f.setError(paramError(name, p, input.value));
  input.addEventListener(p.type === "choice" ? "change" : "input", () => {
    state.paramValues[name] = input.value;
    check();
  });
  if (state.serverErrors?.[`param:${name}`]) f.setError(state.serverErrors[`param:${name}`]);
  else if (input.value) check();
  return f.wrap;
}

export function renderStep(container, state) {
  const spec = state.command;
  const params = Object.entries(spec.params || {});
  container.append(
    h("section", { class: "panel", id: "command-params" },
      h("h2", { text: `Command ${spec.name}` }),
      spec.description ? h("p", { class: "muted", text: spec.description }) : null,
      params.length ? h("div", { class: "form-row" }, params.map(([name, p]) => paramField(state, name, p))) : h("p", { class: "muted", text: "This command takes no parameters." }),
      hardwareRow(state)),
  );
}
