// Wizard: what to train — a strategy on candles, a table, or one of the operator's command templates.

import { api, apiSchema } from "../api.js";
import { h } from "../dom.js";
import { initialValues } from "./wizard_command_params.js";

const COMMANDS_PATH = "/api/v1/commands";
const DATA_NEEDS = { none: "takes no data", optional: "data optional", required: "needs data" };

let commands = null;

/** The command templates; [] on a server without the command workload. Fetched once per page. */
export function loadCommands() {
  if (!commands) {
    commands = apiSchema().then((schema) => (schema.paths?.[COMMANDS_PATH] ? api(COMMANDS_PATH).then((r) => r.items || []) : []));
    commands.catch(() => { commands = null; });
  }
  return commands;
}

export function validate(state) {
  return state.workload === "command" && !state.command ? "Pick what to train." : "";
}

function pick(state, spec, kind = "strategy") {
  if (!spec) {
    state.workload = kind;
    return;
  }
  if (state.command?.name !== spec.name) {
    state.paramValues = initialValues(spec);
    state.dataPath = "";
  }
  state.workload = "command";
  state.command = spec;
}

function option(state, value, title, sub, spec, onChange) {
  const kind = spec ? "command" : value;
  const checked = spec ? state.workload === "command" && state.command?.name === spec.name : state.workload === kind;
  const invalid = spec && spec.valid === false;
  return h(
    "label",
    { class: "choice", "data-workload": kind, "data-command": spec?.name },
    h("input", { type: "radio", name: "workload", value, checked, disabled: invalid, onchange: () => { pick(state, spec, kind); onChange(); } }),
    h("span", {}, h("span", { class: "title", text: title }), h("div", { class: invalid ? "field-error" : "cell-sub", text: invalid ? `Invalid template: ${spec.error}` : sub })),
  );
}

/** The workload choice; onChange runs after the user picked another one (the steps change with it). */
export function renderPanel(state, onChange) {
  const list = h("div", { class: "choice-list", role: "radiogroup", "aria-labelledby": "workload-title" },
    option(state, "strategy", "Strategy training", "Candle data, a strategy file or YAML, epochs.", null, onChange),
    option(state, "tabular", "Tabular training", "A CSV or Parquet table and the column to predict.", null, onChange));
  const error = h("div", { class: "action-error", role: "alert" });
  loadCommands()
    .then((items) => {
      list.append(...items.map((spec) => option(state, `command:${spec.name}`, `Command: ${spec.name}`, `${spec.description || ""} (${DATA_NEEDS[spec.dataset] || spec.dataset})`.trim(), spec, onChange)));
      if (!items.length && state.workload === "command") pick(state, null);
    })
    .catch((exc) => { error.textContent = `Could not list the commands: ${exc.message}`; });
  return h("section", { class: "panel", id: "wizard-workload" }, h("h2", { id: "workload-title", text: "What to train" }), error, list);
}

export function renderStep(container, state, onChange) {
  container.append(renderPanel(state, onChange));
}

