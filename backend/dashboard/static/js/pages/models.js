// Models: strategy → symbol/timeframe → versions with metrics; latest marked; download, ONNX export and delete.

import { api } from "../api.js";
import { clear, confirmAction, h, pageHead } from "../dom.js";
import { fmtBytes, fmtDate, fmtNumber, fmtPercent } from "../format.js";
import { modelDownloadUrl } from "./training_results.js";

// A command training's version holds its program's files, and a plugin's network lives in the plugin's
// package: the server refuses both (422 saying why), so only a stored network gets the ONNX button.
function exportable(v) {
  const files = v.files || [];
  return v.strategy !== "plugin" && (files.includes("model.safetensors") || files.includes("model.pt"));
}

function onnxUrl(v) {
  return `/api/v1/models/${encodeURIComponent(v.strategy)}/${encodeURIComponent(v.name)}/versions/${v.version}/onnx`;
}

function versionRow(v, reload) {
  const test = v.metrics?.test || {};
  const fit = v.metrics?.fit || {};
  const error = h("div", { class: "action-error", role: "alert" });
  const del = h("button", {
    type: "button",
    class: "btn btn-danger btn-small",
    "aria-label": `Delete ${v.strategy}/${v.name} version ${v.version}`,
    text: "Delete",
    onclick: async () => {
      const yes = await confirmAction("Delete this model version?", `${v.strategy}/${v.name} v${v.version} and its files are removed from the model store. This cannot be undone.`, "Delete version");
      if (!yes) return;
      del.disabled = true;
      try {
        await api(`/api/v1/models/${encodeURIComponent(v.strategy)}/${encodeURIComponent(v.name)}/versions/${v.version}`, { method: "DELETE" });
        reload();
      } catch (exc) {
        error.textContent = `Could not delete: ${exc.message}`;
        del.disabled = false;
      }
    },
  });
  return h(
    "tr",
    { "data-version": v.version },
    h("td", {}, h("strong", { text: `v${v.version}` }), " ", v.is_latest ? h("span", { class: "badge latest", text: "latest" }) : null,
      (v.aliases || []).map((a) => h("span", { class: "badge alias", "data-alias": a, text: a }))),
    h("td", { text: fmtDate(v.created_at) }),
    h("td", { class: "num", text: test.accuracy === undefined ? "—" : fmtPercent(test.accuracy) }),
    h("td", { class: "num", text: fmtNumber(test.macro_f1, 3) }),
    h("td", { class: "num", text: fmtNumber(fit.best_val_loss) }),
    h("td", { class: "num", text: fmtNumber(fit.epochs_trained) }),
    h("td", { class: "num", text: fmtBytes(v.size_bytes) }),
    h("td", {}, h("div", { class: "toolbar" }, h("a", { class: "btn btn-small", href: modelDownloadUrl(v), download: "", "data-action": "download", text: "Download" }), exportable(v) ? h("a", { class: "btn btn-small", href: onnxUrl(v), download: "", "data-action": "onnx", title: "The network as an ONNX graph, for onnxruntime or any ONNX tool", text: "ONNX" }) : null, del), error),
  );
}

function modelPath(detail) {
  return `/api/v1/models/${encodeURIComponent(detail.strategy)}/${encodeURIComponent(detail.name)}`;
}

// Point an alias (production, staging …) at a version; moving an existing alias is one step.
function aliasForm(detail, reload) {
  const name = h("input", { type: "text", name: "alias", placeholder: "production", "aria-label": "Alias", required: true, size: 14 });
  const version = h("select", { name: "version", "aria-label": "Version" }, detail.versions.map((v) => h("option", { value: String(v.version), text: `v${v.version}` })));
  const error = h("div", { class: "action-error", role: "alert" });
  const submit = async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      await api(`${modelPath(detail)}/aliases/${encodeURIComponent(name.value.trim())}`, { method: "PUT", body: { version: Number(version.value) } });
      reload();
    } catch (exc) {
      error.textContent = `Could not set the alias: ${exc.message}`;
    }
  };
  return h("form", { class: "toolbar alias-form", onsubmit: submit }, h("label", { text: "Set alias" }), name, h("span", { text: "→" }), version, h("button", { type: "submit", class: "btn btn-small", text: "Set" }), error);
}

function versionsTable(detail, reload) {
  return h(
    "div",
    { class: "table-wrap" },
    aliasForm(detail, reload),
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, ["Version", "Created", "Accuracy", "Macro F1", "Best val loss", "Epochs", "Size", ""].map((t, i) => h("th", { scope: "col", class: i >= 2 && i <= 6 ? "num" : "", text: t })))),
      h("tbody", {}, detail.versions.map((v) => versionRow(v, reload))),
    ),
  );
}

function modelEntry(m, reload) {
  const body = h("div", { style: { padding: "0 0 .8rem" } }, h("p", { class: "muted", text: "Loading versions…" }));
  const details = h("details", { class: "model", "data-model": `${m.strategy}/${m.name}` },
    h("summary", {}, h("span", { class: "mono", text: m.name }), h("span", { class: "badge", text: `${m.versions} version${m.versions === 1 ? "" : "s"}` }), h("span", { class: "muted", style: { fontWeight: 400 }, text: `latest v${m.latest_version ?? "—"} · ${fmtDate(m.updated_at)}` }),
      Object.entries(m.aliases || {}).map(([a, v]) => h("span", { class: "badge alias", text: `${a} → v${v}` }))),
    body);
  let loaded = false;
  details.addEventListener("toggle", async () => {
    if (!details.open || loaded) return;
    loaded = true;
    try {
      clear(body, versionsTable(await api(`/api/v1/models/${encodeURIComponent(m.strategy)}/${encodeURIComponent(m.name)}`), reload));
    } catch (exc) {
      clear(body, h("div", { class: "action-error", role: "alert", text: `Could not load versions: ${exc.message}` }));
      loaded = false;
    }
  });
  return details;
}

export function render(root) {
  const list = h("div", {}, h("p", { class: "muted", text: "Loading models…" }));
  const error = h("div", { class: "action-error", role: "alert" });
  const opened = new Set();
  const load = async () => {
    for (const d of list.querySelectorAll("details[open]")) opened.add(d.dataset.model);
    try {
      const models = await api("/api/v1/models");
      if (!models.length) {
        clear(list, h("div", { class: "panel empty", text: "No models yet. A completed training stores its model here." }));
        return;
      }
      const byStrategy = Map.groupBy ? Map.groupBy(models, (m) => m.strategy) : models.reduce((acc, m) => acc.set(m.strategy, [...(acc.get(m.strategy) || []), m]), new Map());
      clear(list, [...byStrategy.entries()].sort().map(([strategy, items]) =>
        h("section", { class: "panel", "data-strategy": strategy }, h("h2", {}, h("span", { text: strategy }), h("span", { class: "muted", style: { fontWeight: 400, fontSize: ".85rem" }, text: `${items.length} model${items.length === 1 ? "" : "s"}` })), items.map((m) => {
          const entry = modelEntry(m, load);
          if (opened.has(entry.dataset.model)) entry.open = true;
          return entry;
        }))));
    } catch (exc) {
      error.textContent = `Could not list models: ${exc.message}`;
    }
  };
  root.append(pageHead("Models", "Versioned models in the store, grouped by strategy. Open one to see its versions.", h("button", { type: "button", class: "btn", text: "Refresh", onclick: load })), error, list);
  load();
}
