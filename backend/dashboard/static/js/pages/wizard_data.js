// Wizard step 1: pick a dataset on the server (or upload a CSV) and an optional date range.

import { api } from "../api.js";
import { clear, field, h } from "../dom.js";
import { fmtDay, fmtNumber } from "../format.js";

export const title = "Dataset";

export function validate(state) {
  if (!state.dataset) return "Pick a dataset, or upload a CSV first.";
  if (state.startDate && state.endDate && state.startDate > state.endDate) return "The start date must not be after the end date.";
  return "";
}

function datasetChoices(items, state, onPick) {
  if (!items.length) return h("p", { class: "empty", text: "No datasets on the server yet: upload a CSV below." });
  return h(
    "div",
    { class: "choice-list", role: "radiogroup", "aria-label": "Datasets" },
    items.map((d) => {
      const key = `${d.symbol}_${d.timeframe}`;
      const input = h("input", { type: "radio", name: "dataset", value: key, checked: state.dataset?.key === key, onchange: () => onPick(d) });
      return h(
        "label",
        { class: "choice", "data-dataset": key },
        input,
        h(
          "span",
          {},
          h("span", { class: "title", text: `${d.symbol} · ${d.timeframe}` }),
          h("div", { class: "cell-sub", text: `${fmtNumber(d.rows)} rows · ${fmtDay(d.start)} → ${fmtDay(d.end)}` }),
        ),
      );
    }),
  );
}

function uploadForm(onUploaded) {
  const symbol = field("Symbol", h("input", { type: "text", name: "symbol", autocomplete: "off", placeholder: "EURUSD" }));
  const timeframe = field("Timeframe", h("input", { type: "text", name: "timeframe", autocomplete: "off", placeholder: "1h" }));
  const file = field("CSV file", h("input", { type: "file", name: "file", accept: ".csv,text/csv" }), "Columns: timestamp, open, high, low, close, volume.");
  const status = h("div", { role: "status", "aria-live": "polite" });
  const button = h("button", { type: "submit", class: "btn", text: "Upload CSV" });
  const fields = { symbol, timeframe, file };
  const form = h("form", {
    id: "upload-form",
    onsubmit: async (event) => {
      event.preventDefault();
      Object.values(fields).forEach((f) => f.setError(""));
      clear(status);
      let missing = false;
      for (const [name, f] of Object.entries(fields)) {
        const empty = name === "file" ? !f.control.files.length : !f.control.value.trim();
        if (empty) {
          f.setError(name === "file" ? "Choose a CSV file to upload." : `Enter the ${name}.`);
          missing = true;
        }
      }
      if (missing) return;
      const data = new FormData();
      data.append("symbol", symbol.control.value.trim());
      data.append("timeframe", timeframe.control.value.trim());
      data.append("file", file.control.files[0]);
      button.disabled = true;
      try {
        const stored = await api("/api/v1/data", { method: "POST", form: data });
        status.append(h("div", { class: "notice ok", text: `Uploaded ${stored.symbol} ${stored.timeframe}: ${fmtNumber(stored.rows)} rows.` }));
        onUploaded(stored);
      } catch (exc) {
        const target = fields[exc.field] || fields[String(exc.details.field || "").split(".").pop()] || file;
        target.setError(`Upload rejected: ${exc.message}`);
      } finally {
        button.disabled = false;
      }
    },
  });
  form.append(h("div", { class: "form-row" }, symbol.wrap, timeframe.wrap), file.wrap, button, status);
  return form;
}

export function renderStep(container, state) {
  const list = h("div", {}, h("p", { class: "muted", text: "Loading datasets…" }));
  const listError = h("div", { class: "action-error", role: "alert" });
  const start = field("From (optional)", h("input", { type: "date", value: state.startDate || "" }));
  const end = field("To (optional)", h("input", { type: "date", value: state.endDate || "" }));
  const checkRange = () => {
    state.startDate = start.control.value;
    state.endDate = end.control.value;
    end.setError(state.startDate && state.endDate && state.startDate > state.endDate ? "The end date is before the start date." : "");
  };
  start.control.addEventListener("change", checkRange);
  end.control.addEventListener("change", checkRange);

  const pick = (d) => {
    state.dataset = { key: `${d.symbol}_${d.timeframe}`, symbol: d.symbol, timeframe: d.timeframe, rows: d.rows, start: d.start, end: d.end };
  };
  const load = async (selectKey) => {
    try {
      const items = (await api("/api/v1/data")).items.filter((d) => (d.kind || "candles") === "candles");
      if (selectKey) {
        const found = items.find((d) => `${d.symbol}_${d.timeframe}` === selectKey);
        if (found) pick(found);
      }
      clear(list, datasetChoices(items, state, pick));
    } catch (exc) {
      listError.textContent = `Could not list datasets: ${exc.message}`;
    }
  };
  container.append(
    h("div", { class: "grid-2" },
      h("section", { class: "panel", "aria-labelledby": "ds-title" }, h("h2", { id: "ds-title", text: "Data on the server" }), listError, list, h("div", { class: "form-row", style: { marginTop: "1rem" } }, start.wrap, end.wrap)),
      h("section", { class: "panel", "aria-labelledby": "up-title" }, h("h2", { id: "up-title", text: "Upload a CSV" }), uploadForm((stored) => load(`${stored.symbol}_${stored.timeframe}`))),
    ),
  );
  load();
}
