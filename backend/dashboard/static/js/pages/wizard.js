// New training: a four-step wizard, then submit. What to train is chosen first and sets the steps:
// a strategy: dataset (with the choice above it) → configuration → parameters → confirm;
// a table: table and target (with the choice above it) → parameters → confirm;
// a command: workload → dataset (as its template asks) → command parameters → confirm.

import { api } from "../api.js";
import { clear, h } from "../dom.js";
import { loadProjects } from "../projects.js";
import * as commandData from "./wizard_command_data.js";
import * as commandParams from "./wizard_command_params.js";
import * as config from "./wizard_config.js";
import * as data from "./wizard_data.js";
import * as params from "./wizard_params.js";
import * as project from "./wizard_project.js";
import { requestBody, summary } from "./wizard_request.js";
import * as tabular from "./wizard_tabular.js";
import { SWEEP_BASE_KEY } from "./sweeps.js";
import * as workload from "./wizard_workload.js";

export { requestBody };

const CONFIRM = { title: "Confirm", validate: () => "", renderStep: (c, state) => c.append(summary(state)) };
const withProject = (step) => ({
  title: step.title,
  validate: (state) => step.validate(state) || project.validate(state),
  renderStep: (c, state) => { step.renderStep(c, state); c.append(project.renderPanel(state)); },
});
const FLOWS = {
  strategy: [
    { title: "Dataset", validate: data.validate, renderStep: (c, state, redraw) => { workload.renderStep(c, state, redraw); data.renderStep(c, state); } },
    config,
    withProject(params),
    CONFIRM,
  ],
  tabular: [
    { title: "Table", validate: tabular.validate, renderStep: (c, state, redraw) => { workload.renderStep(c, state, redraw); tabular.renderStep(c, state); } },
    withProject(params),
    CONFIRM,
  ],
  command: [
    { title: "Workload", validate: workload.validate, renderStep: workload.renderStep },
    commandData,
    withProject(commandParams),
    CONFIRM,
  ],
};
const PARAMS_STEP = { strategy: 2, tabular: 1, command: 2 };

function freshState() {
  return {
    step: 0,
    workload: "strategy",
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
    command: null,
    paramValues: {},
    dataPath: "",
    table: null,
    target: "",
    task: "classification",
    ...project.initialState(),
    mode: "auto",
    requireGpu: false,
    serverErrors: {},
    // One key per wizard: a double click or a retried submit starts one training, not two.
    idempotencyKey: `wizard-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`,
  };
}

/** Where the field the server blamed lives: [step index, state key], or null. */
function blamed(state, serverField) {
  const f = String(serverField || "").replace(/^body\./, "");
  const paramsStep = PARAMS_STEP[state.workload];
  if (params.SERVER_FIELDS[f]) return [paramsStep, params.SERVER_FIELDS[f]];
  if (project.fieldKey(f)) return [paramsStep, project.fieldKey(f)];
  if (state.workload === "tabular" && /^tabular\./.test(f)) return [0, "target"];
  const param = commandParams.paramOfField(state, f);
  if (param) return [paramsStep, `param:${param}`];
  if (state.workload === "command" && /^(command\.)?dataset$/.test(f)) return [1, "dataset"];
  return null;
}

export function render(root) {
  const state = freshState();
  const steps = () => FLOWS[state.workload];
  const stepper = h("ol", { class: "steps", "aria-label": "Steps" });
  const body = h("div");
  const back = h("button", { type: "button", class: "btn", text: "Back" });
  const next = h("button", { type: "button", class: "btn btn-primary", id: "wizard-next" });
  const navError = h("div", { class: "action-error", id: "wizard-error", role: "alert" });

  const drawStepper = () => clear(stepper, steps().map((st, i) => h("li", { class: i < state.step ? "done" : "", "aria-current": i === state.step ? "step" : null, text: st.title })));
  const draw = (keepFocus = false) => {
    const focused = keepFocus ? document.activeElement?.value : null;
    drawStepper();
    clear(body);
    navError.textContent = "";
    steps()[state.step].renderStep(body, state, () => draw(true));
    back.disabled = state.step === 0;
    next.textContent = state.step === steps().length - 1 ? "Start training" : "Next";
    // Picking another workload redraws step 1; keep the keyboard on the radio just picked (the
    // command radios appear once their list has loaded).
    const refocus = () => body.querySelector(`input[name="workload"][value="${CSS.escape(focused)}"]`)?.focus();
    if (focused) workload.loadCommands().then(refocus, refocus);
  };

  const submit = async () => {
    next.disabled = true;
    try {
      const res = await api("/api/v1/trainings", { method: "POST", body: requestBody(state) });
      loadProjects(); // a new project appears in the header's switcher
      window.location.hash = `#/trainings/${res.operation_id}`;
    } catch (exc) {
      const where = blamed(state, exc.field);
      navError.textContent = `The server did not start the training: ${exc.message}`;
      if (where) {
        const [step, key] = where;
        state.serverErrors = { [key]: exc.message };
        navError.append(" ", h("button", { type: "button", class: "btn btn-small", "data-action": "fix", text: `Fix it in step ${step + 1}`, onclick: () => { state.step = step; draw(); } }));
      }
    } finally {
      next.disabled = false;
    }
  };

  // The request built so far becomes a sweep's base: the sweeps page opens with it in its form.
  const startSweep = h("button", { type: "button", class: "btn", id: "wizard-sweep", text: "Start a sweep", onclick: () => {
    try {
      sessionStorage.setItem(SWEEP_BASE_KEY, JSON.stringify(requestBody(state)));
    } catch {
      sessionStorage.removeItem(SWEEP_BASE_KEY); // not enough chosen yet: the form opens with an example
    }
    window.location.hash = "#/sweeps";
  } });

  back.addEventListener("click", () => {
    state.step -= 1;
    draw();
  });
  next.addEventListener("click", () => {
    const problem = steps()[state.step].validate(state);
    if (problem) {
      navError.textContent = problem;
      return;
    }
    if (state.step === steps().length - 1) {
      submit();
      return;
    }
    state.serverErrors = {};
    state.step += 1;
    draw();
  });

  root.append(
    h("div", { class: "page-head" }, h("div", {}, h("h1", { text: "New training" }), h("div", { class: "sub", text: "Choose what to train and its data, set the parameters, then start." }))),
    stepper,
    body,
    h("div", { class: "wizard-nav" }, back, h("div", { class: "right" }, startSweep, next, navError)),
  );
  draw();
}
