// Data: every file of the data folder (candles and tables), a table upload (CSV or Parquet), and the
// preview of one file: columns with dtype and missing values, row count, first rows.

import { api } from "../api.js";
import { clear, field, h, pageHead } from "../dom.js";
import { fmtBytes, fmtDay, fmtNumber } from "../format.js";

const dataLink = (path) => `#/data/${encodeURIComponent(path)}`;

export function fetchPreview(path) {
  return api(`/api/v1/data/${encodeURIComponent(path)}/preview`);
}

/** Columns (dtype, missing count and share) and the first rows of a preview answer. */
export function previewTables(preview) {
  const share = (n) => (preview.rows ? ` (${((100 * n) / preview.rows).toFixed(n && n < preview.rows / 1000 ? 2 : 1)} %)` : "");
  const columns = h("div", { class: "table-wrap" }, h("table", { id: "preview-columns" },
    h("caption", { class: "muted", text: `${fmtNumber(preview.rows)} rows · ${preview.columns.length} columns · ${preview.format}` }),
    h("thead", {}, h("tr", {}, ["Column", "Type", "Missing"].map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, preview.columns.map((c) => h("tr", { "data-column": c.name },
      h("th", { scope: "row", text: c.name }),
      h("td", { class: "mono", text: c.dtype }),
      h("td", { class: c.missing ? "" : "muted", text: c.missing ? `${fmtNumber(c.missing)}${share(c.missing)}` : "none" }))))));
  if (!preview.sample_rows.length) return columns;
  const cell = (v) => h("td", { class: v === null ? "muted" : "", text: v === null ? "—" : String(v) });
  const sample = h("div", { class: "table-wrap" }, h("table", { id: "preview-rows" },
    h("caption", { class: "muted", text: `First ${preview.sample_rows.length} rows` }),
    h("thead", {}, h("tr", {}, preview.columns.map((c) => h("th", { scope: "col", text: c.name })))),
    h("tbody", {}, preview.sample_rows.map((row) => h("tr", {}, row.map(cell))))));
  return h("div", {}, columns, sample);
}

/** A table upload (CSV or Parquet); ``onUploaded`` gets the stored file's listing entry. */
export function tableUploadForm(onUploaded, id = "table-upload-form") {
  const file = field("CSV or Parquet file", h("input", { type: "file", name: "file", accept: ".csv,.parquet,.pq,text/csv" }), "A header line naming each column once; no empty column.");
  const name = field("Store as (optional)", h("input", { type: "text", name: "name", autocomplete: "off", placeholder: "the file's own name" }), "Ends in .csv or .parquet.");
  const status = h("div", { role: "status", "aria-live": "polite" });
  const button = h("button", { type: "submit", class: "btn", text: "Upload table" });
  const form = h("form", {
    id,
    onsubmit: async (event) => {
      event.preventDefault();
      file.setError("");
      name.setError("");
      clear(status);
      if (!file.control.files.length) {
        file.setError("Choose a CSV or Parquet file to upload.");
        return;
      }
      const data = new FormData();
      data.append("kind", "table");
      if (name.control.value.trim()) data.append("name", name.control.value.trim());
      data.append("file", file.control.files[0]);
      button.disabled = true;
      try {
        const stored = await api("/api/v1/data", { method: "POST", form: data });
        status.append(h("div", { class: "notice ok", text: `Uploaded ${stored.path}: ${fmtNumber(stored.rows)} rows, ${stored.columns} columns.` }));
        onUploaded(stored);
      } catch (exc) {
        (String(exc.details?.field || exc.field || "") === "name" ? name : file).setError(`Upload rejected: ${exc.message}`);
      } finally {
        button.disabled = false;
      }
    },
  });
  form.append(file.wrap, name.wrap, button, status);
  return form;
}

function describe(d) {
  if (d.kind === "candles") return `${d.symbol} · ${d.timeframe} · ${fmtDay(d.start)} → ${fmtDay(d.end)}`;
  return `${d.columns} columns · ${d.format}`;
}

function filesTable(items, selected) {
  if (!items.length) return h("p", { class: "empty", text: "The data folder is empty: upload a table." });
  return h("div", { class: "table-wrap" }, h("table", { id: "data-table" },
    h("thead", {}, h("tr", {}, ["File", "Kind", "Rows", "Details", "Size"].map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, items.map((d) => h("tr", { "data-path": d.path, "aria-current": d.path === selected ? "true" : null },
      h("td", {}, h("a", { href: dataLink(d.path), text: d.path })),
      h("td", {}, h("span", { class: "badge", text: d.kind })),
      h("td", { text: fmtNumber(d.rows) }),
      h("td", { class: "cell-sub", text: describe(d) }),
      h("td", { text: d.size_bytes == null ? "—" : fmtBytes(d.size_bytes) }))))));
}

export function render(root, selected) {
  const list = h("div", {}, h("p", { class: "muted", text: "Loading the data folder…" }));
  const preview = h("section", { class: "panel", id: "data-preview", "aria-labelledby": "preview-title" });
  root.append(
    pageHead("Data", "Candle datasets and tables (CSV or Parquet) on the server; pick one to see its columns."),
    h("div", { class: "grid-2" },
      h("section", { class: "panel", "aria-labelledby": "files-title" }, h("h2", { id: "files-title", text: "Files" }), list),
      h("section", { class: "panel", "aria-labelledby": "table-up-title" }, h("h2", { id: "table-up-title", text: "Upload a table" }),
        tableUploadForm((stored) => { window.location.hash = dataLink(stored.path); }))),
    preview,
  );
  api("/api/v1/data")
    .then(({ items }) => clear(list, filesTable(items, selected)))
    .catch((exc) => clear(list, h("div", { class: "action-error", role: "alert", text: `Could not list the data: ${exc.message}` })));
  if (!selected) {
    preview.hidden = true;
    return;
  }
  preview.append(h("h2", { id: "preview-title", text: selected }), h("p", { class: "muted", text: "Reading the file…" }));
  fetchPreview(selected)
    .then((p) => clear(preview, h("h2", { id: "preview-title", text: `${p.path} (${p.kind})` }), previewTables(p)))
    .catch((exc) => clear(preview, h("h2", { id: "preview-title", text: selected }), h("div", { class: "action-error", role: "alert", text: `No preview: ${exc.message}` })));
}
