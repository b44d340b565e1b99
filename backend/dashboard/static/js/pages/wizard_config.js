// Wizard step 2: a strategy file from the server (viewable), or pasted YAML validated as you type.

import { api } from "../api.js";
import { clear, h } from "../dom.js";

export const title = "Configuration";

const VALIDATE_DELAY_MS = 350;

export function validate(state) {
  if (state.source === "file") return state.strategy ? "" : "Pick a strategy.";
  if (!state.yaml.trim()) return "Paste a strategy's YAML, or pick a strategy file.";
  if (state.yamlCheck === "checking") return "The YAML is still being checked; try again in a moment.";
  return state.yamlValid ? "" : "Fix the YAML errors first.";
}

/** The strategy's own training defaults, read from its text, shown as placeholders in step 3. */
export function trainingDefaults(text) {
  const block = (text || "").split(/^training:\s*$/m)[1] || "";
  const read = (key) => (block.match(new RegExp(`^\\s+${key}:\\s*([0-9.eE+-]+)`, "m")) || [])[1] || "";
  return { epochs: read("epochs"), batchSize: read("batch_size"), learningRate: read("learning_rate") };
}

async function loadSource(name, state) {
  const { yaml } = await api(`/api/v1/strategies/${encodeURIComponent(name)}/source`);
  state.sourceText = yaml;
  state.defaults = trainingDefaults(yaml);
  return yaml;
}

function filePicker(state) {
  const viewer = h("div");
  const error = h("div", { class: "action-error", role: "alert" });
  const list = h("div", { class: "choice-list", role: "radiogroup", "aria-label": "Strategies" }, h("p", { class: "muted", text: "Loading strategies…" }));
  const show = async (name) => {
    error.textContent = "";
    try {
      const yaml = await loadSource(name, state);
      clear(viewer, h("h3", { text: `${name}.yaml`, style: { marginTop: "1rem" } }), h("pre", { class: "source", id: "strategy-source", tabindex: "0", text: yaml }));
    } catch (exc) {
      error.textContent = `Could not show ${name}: ${exc.message}`;
    }
  };
  api("/api/v1/strategies")
    .then((items) => {
      clear(list, items.map((st) => {
        const input = h("input", { type: "radio", name: "strategy", value: st.name, disabled: !st.valid, checked: state.strategy === st.name, onchange: () => { state.strategy = st.name; loadSource(st.name, state).catch(() => {}); } });
        return h(
          "label",
          { class: "choice", "data-strategy": st.name },
          input,
          h("span", { style: { flex: 1 } },
            h("span", { class: "title", text: st.name }),
            h("div", { class: st.valid ? "cell-sub" : "field-error", text: st.valid ? st.description : `Invalid: ${st.error}` })),
          h("button", { type: "button", class: "btn btn-small", text: "View", "aria-label": `View ${st.name}`, onclick: (e) => { e.preventDefault(); show(st.name); } }),
        );
      }));
    })
    .catch((exc) => { error.textContent = `Could not list strategies: ${exc.message}`; });
  return h("div", {}, error, list, viewer);
}

function yamlEditor(state) {
  const area = h("textarea", { id: "strategy-yaml", spellcheck: false, "aria-describedby": "yaml-status", placeholder: "name: my_strategy\nindicators:\n  - name: rsi\n    params: {period: 14}\n…" });
  area.value = state.yaml;
  const statusNode = h("div", { id: "yaml-status", role: "status", "aria-live": "polite" });
  let timer = null;
  let seq = 0;
  const check = async () => {
    const mine = ++seq;
    if (!area.value.trim()) {
      state.yamlValid = false;
      state.yamlCheck = "";
      clear(statusNode);
      area.removeAttribute("aria-invalid");
      return;
    }
    try {
      const res = await api("/api/v1/strategies/validate", { method: "POST", body: { strategy_yaml: area.value } });
      if (mine !== seq) return;
      state.yamlValid = res.valid;
      state.yamlName = res.name || "";
      state.defaults = trainingDefaults(area.value);
      if (res.valid) {
        area.removeAttribute("aria-invalid");
        const s = res.summary || {};
        clear(statusNode, h("div", { class: "notice ok", text: `Valid strategy "${res.name}": ${(s.indicators || []).length} indicators, ${(s.features || []).length} fuzzy inputs.` }));
      } else {
        area.setAttribute("aria-invalid", "true");
        const where = res.error.details?.field ? ` (field ${res.error.details.field})` : "";
        clear(statusNode, h("div", { class: "notice bad", "data-error": res.error.code, text: `${res.error.message}${where}` }));
      }
    } catch (exc) {
      if (mine !== seq) return;
      state.yamlValid = false;
      area.setAttribute("aria-invalid", "true");
      clear(statusNode, h("div", { class: "notice bad", text: `Could not validate: ${exc.message}` }));
    } finally {
      if (mine === seq) state.yamlCheck = "";
    }
  };
  area.addEventListener("input", () => {
    state.yaml = area.value;
    state.yamlCheck = "checking";
    clearTimeout(timer);
    timer = setTimeout(check, VALIDATE_DELAY_MS);
  });
  if (state.yaml) check();
  return h("div", {}, h("label", { for: "strategy-yaml", text: "Strategy YAML" }), area, statusNode);
}

export function renderStep(container, state) {
  const body = h("div");
  const draw = () => clear(body, state.source === "file" ? filePicker(state) : yamlEditor(state));
  const option = (value, text) => h("label", { class: "check" }, h("input", { type: "radio", name: "source", value, checked: state.source === value, onchange: () => { state.source = value; draw(); } }), text);
  container.append(
    h("section", { class: "panel" },
      h("fieldset", {}, h("legend", { text: "Where does the configuration come from?" }),
        h("div", { class: "toolbar", style: { marginBottom: "1rem" } }, option("file", "A strategy file on the server"), option("yaml", "Paste YAML"))),
      body),
  );
  draw();
}
