// The training page's outcome panels: test metrics, confusion matrix, feature importance, the model.

import { barChart, confusionMatrix } from "../charts.js";
import { h } from "../dom.js";
import { fmtNumber, fmtPercent } from "../format.js";

/** A model's family: its strategy, or for a command run the command's name. */
export function modelFamily(model) {
  return model.strategy || model.command || model.family || "";
}

export function modelDownloadUrl(model) {
  const part = encodeURIComponent;
  return `/api/v1/models/${part(modelFamily(model))}/${part(model.name)}/versions/${model.version}/download`;
}

function perClassTable(perClass) {
  const names = Object.keys(perClass || {});
  if (!names.length) return null;
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { id: "per-class" },
      h("thead", {}, h("tr", {}, ["Class", "Precision", "Recall", "F1", "Support"].map((t, i) => h("th", { scope: "col", class: i ? "num" : "", text: t })))),
      h("tbody", {}, names.map((n) => {
        const c = perClass[n];
        return h("tr", {}, h("th", { scope: "row", text: n }), [c.precision, c.recall, c.f1].map((v) => h("td", { class: "num", text: fmtNumber(v, 3) })), h("td", { class: "num", text: fmtNumber(c.support) }));
      })),
    ),
  );
}

function testMetricsPanel(test) {
  const headline = [
    ["Accuracy", fmtPercent(test.accuracy)],
    ["Macro F1", fmtNumber(test.macro_f1, 3)],
    ["Test samples", fmtNumber(test.samples)],
  ];
  for (const key of ["rmse", "mae", "r2"]) if (test[key] !== undefined) headline.push([key.toUpperCase(), fmtNumber(test[key], 4)]);
  // A command run's result holds whatever its program last reported: show each number as it is named.
  const known = headline.filter(([, v]) => v !== "—");
  const shown = known.length ? known : Object.entries(test).filter(([, v]) => typeof v === "number").map(([k, v]) => [k.replaceAll("_", " "), fmtNumber(v)]);
  return h(
    "section",
    { class: "panel", id: "test-metrics" },
    h("h2", { text: known.length ? "Test metrics" : "Final metrics" }),
    h("div", { class: "cards" }, shown.map(([k, v]) => h("div", { class: "card" }, h("div", { class: "label", text: k }), h("div", { class: "value", text: v })))),
    perClassTable(test.per_class),
  );
}

function modelFacts(result) {
  const model = result.model;
  const files = model.files || result.files || [];
  const facts = [["Stored as", `${modelFamily(model)}/${model.name} v${model.version}`, "mono"]];
  if (result.stop_reason) facts.push(["Stopped because", String(result.stop_reason).replaceAll("_", " ")]);
  if (result.epochs_trained) facts.push(["Epochs trained", fmtNumber(result.epochs_trained)]);
  if (result.best_epoch !== undefined && result.best_epoch !== null) facts.push(["Best epoch", `${fmtNumber(result.best_epoch)} (val loss ${fmtNumber(result.best_val_loss)})`]);
  if (result.steps !== undefined) facts.push(["Steps", fmtNumber(result.steps)]);
  if (files.length) facts.push(["Files", files.map((f) => (typeof f === "string" ? f : f.name || f.path)).join(", "), "mono"]);
  return facts;
}

function modelPanel(result) {
  const model = result.model;
  if (!model) return null;
  return h(
    "section",
    { class: "panel", id: "model-panel" },
    h("h2", { text: "Model" }),
    h("dl", { class: "summary" }, modelFacts(result).map(([k, v, cls]) => [h("dt", { text: k }), h("dd", { class: cls, text: v })])),
    h("p", {}, h("a", { class: "btn btn-primary", id: "model-download", href: modelDownloadUrl(model), download: "", text: "Download model (.zip)" }), " ", h("a", { class: "btn", href: "#/models", text: "All models" })),
  );
}

/** Panels for a finished operation: its error, or its metrics, matrix, importance and model. */
export function resultPanels(op) {
  if (op.status === "failed" && op.error) {
    return [h("section", { class: "panel", id: "failure" }, h("h2", { text: "Why it failed" }), h("div", { class: "notice bad", text: op.error.message }), h("p", { class: "muted mono", text: `code: ${op.error.code}` }))];
  }
  const result = op.result;
  if (!result) return [];
  const test = result.test_metrics || {};
  const importance = Object.entries(result.feature_importance || {}).map(([label, value]) => ({ label, value })).sort((a, b) => b.value - a.value);
  const hasTest = Object.keys(test).length > 0;
  const panels = [h("div", { class: hasTest ? "grid-2" : "" }, hasTest ? testMetricsPanel(test) : null, modelPanel(result))];
  const lower = [];
  if (test.confusion_matrix) lower.push(h("section", { class: "panel", id: "confusion" }, h("h2", { text: "Confusion matrix" }), confusionMatrix(test.confusion_matrix, test.class_names)));
  if (importance.length) {
    lower.push(h("section", { class: "panel", id: "importance" }, h("h2", { text: "Feature importance" }), h("p", { class: "muted", text: "Drop in test accuracy when the feature is shuffled (permutation importance)." }), barChart(importance)));
  }
  if (lower.length) panels.push(h("div", { class: "grid-2" }, lower));
  return panels;
}
