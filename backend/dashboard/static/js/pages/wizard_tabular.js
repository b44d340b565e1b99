// Wizard (tabular): pick or upload a table (CSV or Parquet), see its columns, pick the target column
// from them and the task.

import { api } from "../api.js";
import { clear, field, h } from "../dom.js";
import { fmtNumber } from "../format.js";
import { fetchPreview, previewTables, tableUploadForm } from "./data.js";

export const title = "Table";
export const TASKS = ["classification", "regression"];

export function validate(state) {
  if (!state.table) return "Pick a table, or upload one first.";
  if (!state.target) return "Pick the target column: the one the model learns to predict.";
  return "";
}

/** A column of decimals is most likely a quantity to predict; anything else a class. */
const likelyTask = (column) => (column.dtype === "float64" ? "regression" : "classification");

function tableChoices(items, state, onPick) {
  if (!items.length) return h("p", { class: "empty", text: "No tables on the server yet: upload a CSV or Parquet file." });
  return h("div", { class: "choice-list", role: "radiogroup", "aria-label": "Tables" },
    items.map((d) => h("label", { class: "choice", "data-table": d.path },
      h("input", { type: "radio", name: "table", value: d.path, checked: state.table?.path === d.path, onchange: () => onPick(d) }),
      h("span", {}, h("span", { class: "title", text: d.path }), h("div", { class: "cell-sub", text: `${fmtNumber(d.rows)} rows · ${d.columns} columns · ${d.format}` })))));
}

function targetPicker(state, preview) {
  const select = h("select", { name: "target" },
    h("option", { value: "", text: "Pick the target column" }),
    preview.columns.map((c) => h("option", { value: c.name, text: `${c.name} (${c.dtype}${c.missing ? `, ${fmtNumber(c.missing)} missing` : ""})` })));
  select.id = "target-select";
  select.value = state.target || "";
  const target = field("Target column", select, "What the model learns to predict; every other column is a feature.");
  const taskSelect = h("select", { name: "task" }, TASKS.map((t) => h("option", { value: t, text: t })));
  taskSelect.id = "task-select";
  taskSelect.value = state.task;
  const task = field("Task", taskSelect, "classification: one class per row; regression: a number.");
  select.addEventListener("change", () => {
    state.target = select.value;
    target.setError("");
    const column = preview.columns.find((c) => c.name === select.value);
    if (column) {
      state.task = likelyTask(column);
      taskSelect.value = state.task;
    }
  });
  taskSelect.addEventListener("change", () => { state.task = taskSelect.value; });
  if (state.serverErrors?.target) target.setError(state.serverErrors.target);
  return h("div", { class: "form-row" }, target.wrap, task.wrap);
}

export function renderStep(container, state) {
  const list = h("div", {}, h("p", { class: "muted", text: "Loading tables…" }));
  const listError = h("div", { class: "action-error", role: "alert" });
  const previewSlot = h("section", { class: "panel", id: "tabular-target", "aria-labelledby": "target-title", hidden: !state.table });

  const showPreview = async (path) => {
    previewSlot.hidden = false;
    clear(previewSlot, h("h2", { id: "target-title", text: `Target of ${path}` }), h("p", { class: "muted", text: "Reading the columns…" }));
    try {
      const preview = await fetchPreview(path);
      if (state.table?.path !== path) return; // another table was picked meanwhile
      clear(previewSlot, h("h2", { id: "target-title", text: `Target of ${path}` }), targetPicker(state, preview), previewTables(preview));
    } catch (exc) {
      clear(previewSlot, h("h2", { id: "target-title", text: path }), h("div", { class: "action-error", role: "alert", text: `Could not read its columns: ${exc.message}` }));
    }
  };
  const pick = (d) => {
    if (state.table?.path !== d.path) state.target = "";
    state.table = { path: d.path, rows: d.rows, columns: d.columns, format: d.format };
    showPreview(d.path);
  };
  const load = async (selectPath) => {
    try {
      const items = (await api("/api/v1/data")).items.filter((d) => d.kind === "table");
      const found = selectPath && items.find((d) => d.path === selectPath);
      if (found) pick(found);
      clear(list, tableChoices(items, state, pick));
    } catch (exc) {
      listError.textContent = `Could not list the tables: ${exc.message}`;
    }
  };
  container.append(
    h("div", { class: "grid-2" },
      h("section", { class: "panel", "aria-labelledby": "tables-title" }, h("h2", { id: "tables-title", text: "Tables on the server" }), listError, list),
      h("section", { class: "panel", "aria-labelledby": "wizard-up-title" }, h("h2", { id: "wizard-up-title", text: "Upload a table" }),
        tableUploadForm((stored) => load(stored.path), "wizard-table-upload"))),
    previewSlot,
  );
  load();
  if (state.table) showPreview(state.table.path);
}
