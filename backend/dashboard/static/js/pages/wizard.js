// New training: a four-step wizard (dataset → configuration → parameters → confirm), then submit.

import { api } from "../api.js";
import { clear, h } from "../dom.js";
import { fmtDay, fmtNumber } from "../format.js";
import * as config from "./wizard_config.js";
import * as data from "./wizard_data.js";
import * as params from "./wizard_params.js";

const STEPS = [data, config, params, { title: "Confirm", validate: () => "" }];

function freshState() {
  return {
    step: 0,
    dataset: null,
    startDate: "",
    endDate: "",
    source: "file",
    strategy: null,
    yaml: "",
    yamlValid: false,
    yamlCheck: "",
    yamlName: "",
    defaults: {},
    epochs: "",
    batchSize: "",
    learningRate: "",
    mode: "auto",
    requireGpu: false,
    serverErrors: {},
    // One key per wizard: a double click or a retried submit starts one training, not two.
    idempotencyKey: `wizard-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`,
  };
}

export function requestBody(state) {
  const overrides = {};
  if (String(state.epochs).trim()) overrides.epochs = Number(state.epochs);
  if (String(state.batchSize).trim()) overrides.batch_size = Number(state.batchSize);
  if (String(state.learningRate).trim()) overrides.learning_rate = Number(state.learningRate);
  const body = {
    symbol: state.dataset.symbol,
    timeframe: state.dataset.timeframe,
    execution_mode: state.mode,
    require_gpu: state.requireGpu,
    overrides,
    idempotency_key: state.idempotencyKey,
  };
  if (state.source === "file") body.strategy = state.strategy;
  else body.strategy_yaml = state.yaml;
  if (state.startDate) body.start_date = state.startDate;
  if (state.endDate) body.end_date = state.endDate;
  return body;
}

function summary(state) {
  const d = state.dataset;
  const dash = (v, fallback) => (String(v ?? "").trim() ? v : fallback);
  const rows = [
    ["Dataset", `${d.symbol} · ${d.timeframe} (${fmtNumber(d.rows)} rows, ${fmtDay(d.start)} → ${fmtDay(d.end)})`],
    ["Date range", state.startDate || state.endDate ? `${state.startDate || "start"} → ${state.endDate || "end"}` : "all data"],
    ["Strategy", state.source === "file" ? state.strategy : `pasted YAML (${state.yamlName || "unnamed"})`],
    ["Epochs", dash(state.epochs, `strategy default${state.defaults.epochs ? ` (${state.defaults.epochs})` : ""}`)],
    ["Batch size", dash(state.batchSize, `strategy default${state.defaults.batchSize ? ` (${state.defaults.batchSize})` : ""}`)],
    ["Learning rate", dash(state.learningRate, `strategy default${state.defaults.learningRate ? ` (${state.defaults.learningRate})` : ""}`)],
    ["Execution mode", state.mode],
    ["Require GPU", state.requireGpu ? "yes" : "no"],
  ];
  return h("section", { class: "panel" }, h("h2", { text: "Review and start" }), h("dl", { class: "summary", id: "wizard-summary" }, rows.map(([k, v]) => [h("dt", { text: k }), h("dd", { text: String(v) })])));
}

export function render(root) {
  const state = freshState();
  const stepper = h("ol", { class: "steps", "aria-label": "Steps" });
  const body = h("div");
  const back = h("button", { type: "button", class: "btn", text: "Back" });
  const next = h("button", { type: "button", class: "btn btn-primary", id: "wizard-next" });
  const navError = h("div", { class: "action-error", id: "wizard-error", role: "alert" });

  const draw = () => {
    clear(stepper, STEPS.map((st, i) => h("li", { class: i < state.step ? "done" : "", "aria-current": i === state.step ? "step" : null, text: st.title })));
    clear(body);
    navError.textContent = "";
    if (state.step < 3) STEPS[state.step].renderStep(body, state);
    else body.append(summary(state));
    back.disabled = state.step === 0;
    next.textContent = state.step === 3 ? "Start training" : "Next";
  };

  const submit = async () => {
    next.disabled = true;
    try {
      const res = await api("/api/v1/trainings", { method: "POST", body: requestBody(state) });
      window.location.hash = `#/trainings/${res.operation_id}`;
    } catch (exc) {
      const key = params.SERVER_FIELDS[exc.field];
      navError.textContent = `The server did not start the training: ${exc.message}`;
      if (key) {
        state.serverErrors = { [key]: exc.message };
        navError.append(" ", h("button", { type: "button", class: "btn btn-small", text: "Fix it in step 3", onclick: () => { state.step = 2; draw(); } }));
      }
    } finally {
      next.disabled = false;
    }
  };

  back.addEventListener("click", () => {
    state.step -= 1;
    draw();
  });
  next.addEventListener("click", () => {
    const problem = STEPS[state.step].validate(state);
    if (problem) {
      navError.textContent = problem;
      return;
    }
    if (state.step === 3) {
      submit();
      return;
    }
    state.serverErrors = {};
    state.step += 1;
    draw();
  });

  root.append(
    h("div", { class: "page-head" }, h("div", {}, h("h1", { text: "New training" }), h("div", { class: "sub", text: "Choose data and a strategy, set the parameters, then start." }))),
    stepper,
    body,
    h("div", { class: "wizard-nav" }, back, h("div", { class: "right" }, next, navError)),
  );
  draw();
}
