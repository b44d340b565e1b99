// Wizard, command workload: the data a command reads — none, or a file or folder of the data folder.

import { api } from "../api.js";
import { clear, field, h } from "../dom.js";

export const title = "Dataset";

/** A path inside the data folder: relative, no "..", no backslashes. */
export function pathProblem(path) {
  if (!path) return "";
  if (path.startsWith("/") || path.includes("\\") || path.split("/").includes("..")) return "Give a path inside the data folder, e.g. speech/ or EURUSD_1h.csv (no leading /, no ..).";
  return path.length > 500 ? "The path is longer than 500 characters." : "";
}

export function validate(state) {
  const needs = state.command?.dataset || "none";
  if (needs === "required" && !state.dataPath) return `${state.command.name} needs data: pick a file or folder, or type its path.`;
  return needs === "none" ? "" : pathProblem(state.dataPath);
}

/** The files the data listing names (candle CSVs carry a path; other entries may too). */
function dataPaths(items) {
  return items.map((d) => ({ path: d.path || (d.symbol ? `${d.symbol}_${d.timeframe}.csv` : ""), detail: d.rows ? `${d.rows} rows` : d.kind || "" })).filter((d) => d.path);
}

function choices(state, entries, onPick) {
  const optional = state.command.dataset === "optional";
  const radio = (path, label, detail) => h(
    "label",
    { class: "choice", "data-path": path },
    h("input", { type: "radio", name: "command-data", value: path, checked: state.dataPath === path, onchange: () => onPick(path) }),
    h("span", {}, h("span", { class: "title mono", text: label }), detail ? h("div", { class: "cell-sub", text: detail }) : null),
  );
  return h(
    "div",
    { class: "choice-list", role: "radiogroup", "aria-label": "Data files" },
    optional ? radio("", "No data", "Run the command without a dataset.") : null,
    entries.map((d) => radio(d.path, d.path, d.detail)),
    !entries.length ? h("p", { class: "muted", text: "The data folder lists no files; type a path below." }) : null,
  );
}

export function renderStep(container, state) {
  const spec = state.command;
  if ((spec.dataset || "none") === "none") {
    state.dataPath = "";
    container.append(h("section", { class: "panel", id: "command-data" }, h("h2", { text: "Data" }), h("p", { class: "notice", text: `${spec.name} takes no data: go on to its parameters.` })));
    return;
  }
  const list = h("div", {}, h("p", { class: "muted", text: "Loading the data folder…" }));
  const listError = h("div", { class: "action-error", role: "alert" });
  const typed = field("File or folder in the data folder", h("input", { type: "text", id: "command-dataset", autocomplete: "off", spellcheck: false, placeholder: "e.g. speech/ or EURUSD_1h.csv" }), spec.dataset === "required" ? "Required by this command." : "Optional: leave empty to run without data.");
  typed.control.value = state.dataPath;
  const markChosen = () => {
    for (const input of list.querySelectorAll('input[name="command-data"]')) input.checked = input.value === state.dataPath;
  };
  const sync = () => {
    markChosen();
    typed.setError(pathProblem(state.dataPath));
  };
  const onPick = (path) => {
    state.dataPath = path;
    typed.control.value = path;
    sync();
  };
  typed.control.addEventListener("input", () => {
    state.dataPath = typed.control.value.trim();
    sync();
  });
  if (state.serverErrors?.dataset) typed.setError(state.serverErrors.dataset);
  api("/api/v1/data")
    .then(({ items }) => { clear(list, choices(state, dataPaths(items), onPick)); markChosen(); })
    .catch((exc) => { clear(list); listError.textContent = `Could not list the data folder: ${exc.message}`; });
  container.append(
    h("section", { class: "panel", id: "command-data" },
      h("h2", { text: `Data for ${spec.name} (${spec.dataset})` }),
      listError, list,
      h("div", { style: { marginTop: "1rem" } }, typed.wrap)),
  );
}
