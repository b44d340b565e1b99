// Wizard: the request body it posts, and the review shown before starting (with the exact request).

import { h } from "../dom.js";
import { fmtDay, fmtNumber } from "../format.js";
import { commandParams } from "./wizard_command_params.js";
import * as project from "./wizard_project.js";

function overridesOf(state) {
  const overrides = {};
  if (String(state.epochs).trim()) overrides.epochs = Number(state.epochs);
  if (String(state.batchSize).trim()) overrides.batch_size = Number(state.batchSize);
  if (String(state.learningRate).trim()) overrides.learning_rate = Number(state.learningRate);
  return overrides;
}

function tabularBody(state) {
  return {
    workload: "tabular",
    tabular: { dataset: state.table.path, target: state.target, task: state.task },
    overrides: overridesOf(state),
  };
}

function strategyBody(state) {
  const body = {
    symbol: state.dataset.symbol,
    timeframe: state.dataset.timeframe,
    overrides: overridesOf(state),
  };
  if (state.source === "file") body.strategy = state.strategy;
  else body.strategy_yaml = state.yaml;
  if (state.startDate) body.start_date = state.startDate;
  if (state.endDate) body.end_date = state.endDate;
  return body;
}

function commandBody(state) {
  const command = { name: state.command.name, params: commandParams(state) };
  if (state.dataPath) command.dataset = state.dataPath;
  return { workload: "command", command };
}

const BODIES = { strategy: strategyBody, tabular: tabularBody, command: commandBody };

export function requestBody(state) {
  return {
    ...BODIES[state.workload](state),
    ...project.requestFields(state),
    execution_mode: state.mode,
    require_gpu: state.requireGpu,
    idempotency_key: state.idempotencyKey,
  };
}

function strategyRows(state) {
  const d = state.dataset;
  const dash = (v, fallback) => (String(v ?? "").trim() ? v : fallback);
  const dflt = (key) => `strategy default${state.defaults[key] ? ` (${state.defaults[key]})` : ""}`;
  return [
    ["Dataset", `${d.symbol} · ${d.timeframe} (${fmtNumber(d.rows)} rows, ${fmtDay(d.start)} → ${fmtDay(d.end)})`],
    ["Date range", state.startDate || state.endDate ? `${state.startDate || "start"} → ${state.endDate || "end"}` : "all data"],
    ["Strategy", state.source === "file" ? state.strategy : `pasted YAML (${state.yamlName || "unnamed"})`],
    ["Epochs", dash(state.epochs, dflt("epochs"))],
    ["Batch size", dash(state.batchSize, dflt("batchSize"))],
    ["Learning rate", dash(state.learningRate, dflt("learningRate"))],
  ];
}

function tabularRows(state) {
  const t = state.table;
  const dash = (v) => (String(v ?? "").trim() ? v : "tabular default");
  return [
    ["Table", `${t.path} (${fmtNumber(t.rows)} rows, ${t.columns} columns, ${t.format})`],
    ["Target", state.target],
    ["Task", state.task],
    ["Epochs", dash(state.epochs)],
    ["Batch size", dash(state.batchSize)],
    ["Learning rate", dash(state.learningRate)],
  ];
}

function commandRows(state) {
  const params = commandParams(state);
  return [
    ["Command", state.command.name],
    ["Data", state.dataPath || "none"],
    ...Object.entries(params).map(([k, v]) => [k, String(v)]),
  ];
}

export function summary(state) {
  const body = requestBody(state);
  const rows = [
    ...{ strategy: strategyRows, tabular: tabularRows, command: commandRows }[state.workload](state),
    ["Project", body.project],
    ["Name", body.name || "—"],
    ["Tags", body.tags.length ? body.tags.join(", ") : "—"],
    ["Execution mode", state.mode],
    ["Require GPU", state.requireGpu ? "yes" : "no"],
  ];
  return h(
    "section",
    { class: "panel" },
    h("h2", { text: "Review and start" }),
    h("dl", { class: "summary", id: "wizard-summary" }, rows.map(([k, v]) => [h("dt", { text: k }), h("dd", { text: String(v) })])),
    h("details", { class: "request", open: state.workload === "command" },
      h("summary", { text: "The request sent to POST /api/v1/trainings" }),
      h("pre", { class: "source", id: "wizard-request", tabindex: "0", text: JSON.stringify(body, null, 2) })),
  );
}
