// Wizard step 3: training parameters with inline validation, execution mode and GPU requirement.

import { api } from "../api.js";
import { field, h } from "../dom.js";

export const title = "Parameters";

const RULES = {
  epochs: { label: "Epochs", check: (v) => (/^\d+$/.test(v) && +v >= 1 && +v <= 10000 ? "" : "Epochs must be a whole number from 1 to 10000.") },
  batchSize: { label: "Batch size", check: (v) => (/^\d+$/.test(v) && +v >= 1 && +v <= 65536 ? "" : "Batch size must be a whole number from 1 to 65536.") },
  learningRate: { label: "Learning rate", check: (v) => (Number.isFinite(+v) && +v > 0 && +v <= 10 ? "" : "Learning rate must be a number above 0 and at most 10, e.g. 0.001.") },
};

/** Field errors of step 3 by field key; blank fields mean "the strategy's default" and are fine. */
export function fieldErrors(state) {
  const errors = {};
  for (const [key, rule] of Object.entries(RULES)) {
    const value = String(state[key] ?? "").trim();
    if (value) {
      const msg = rule.check(value);
      if (msg) errors[key] = msg;
    }
  }
  return errors;
}

export function validate(state) {
  const errors = Object.values(fieldErrors(state));
  return errors.length ? "Fix the highlighted parameters." : "";
}

export const SERVER_FIELDS = {
  "overrides.epochs": "epochs",
  "overrides.batch_size": "batchSize",
  "overrides.learning_rate": "learningRate",
  execution_mode: "mode",
  require_gpu: "requireGpu",
};

/** Execution mode and "require a GPU": both workloads ask for them. */
export function hardwareRow(state) {
  const mode = field("Execution mode", h("select", { name: "mode" }, ["auto", "local", "host"].map((m) => h("option", { value: m, text: m }))), "auto runs locally unless a GPU is required.");
  mode.control.value = state.mode;
  mode.control.addEventListener("change", () => { state.mode = mode.control.value; mode.setError(""); });
  if (state.serverErrors?.mode) mode.setError(state.serverErrors.mode);
  const gpu = h("input", { type: "checkbox", id: "require-gpu", name: "requireGpu", checked: state.requireGpu, onchange: () => { state.requireGpu = gpu.checked; } });
  const gpuHint = h("div", { class: "hint", id: "gpu-hint", text: "The training fails fast if no CUDA or MPS device can take it." });
  gpu.setAttribute("aria-describedby", "gpu-hint");

  api("/api/v1/system")
    .then((sys) => {
      for (const option of mode.control.options) {
        const info = sys.execution_modes.find((m) => m.mode === option.value);
        if (info) option.textContent = `${option.value} — ${info.available ? info.detail : `unavailable: ${info.detail}`}`;
      }
      gpuHint.textContent = `This server computes on ${sys.device}. The training fails fast if no CUDA or MPS device can take it.`;
    })
    .catch(() => {});

  return h("div", { class: "form-row" }, mode.wrap, h("div", { class: "field" }, h("span", { class: "label-text", text: "Hardware" }), h("label", { class: "check", for: "require-gpu" }, gpu, "Require a GPU"), gpuHint));
}

export function renderStep(container, state) {
  const defaults = state.defaults || {};
  const inputs = {};
  const numberField = (key, hint, step) => {
    const f = field(RULES[key].label, h("input", { type: "number", inputmode: "decimal", step, min: "0", name: key, value: state[key] || "", placeholder: defaults[key] ? `${defaults[key]} (strategy default)` : "strategy default" }), hint);
    f.control.addEventListener("input", () => {
      state[key] = f.control.value;
      const v = f.control.value.trim();
      f.setError(v ? RULES[key].check(v) : "");
    });
    if (state.serverErrors?.[key]) f.setError(state.serverErrors[key]);
    else if (state[key]) f.setError(RULES[key].check(String(state[key])));
    inputs[key] = f;
    return f.wrap;
  };
  container.append(
    h("section", { class: "panel" },
      h("h2", { text: "Training parameters" }),
      h("p", { class: "muted", text: "Leave a field blank to keep the strategy's own value." }),
      h("div", { class: "form-row" }, numberField("epochs", "1 – 10000", "1"), numberField("batchSize", "1 – 65536", "1"), numberField("learningRate", "above 0, at most 10", "any")),
      hardwareRow(state),
    ),
  );
  return inputs;
}
