// Compare: pick two or more trainings; overlay their loss curves and set their final metrics side by side.

import { api, trainingRequest } from "../api.js";
import { PALETTE, lineChart } from "../charts.js";
import { clear, h, pageHead } from "../dom.js";
import { fmtDate, fmtDuration, fmtNumber, fmtPercent, runSeconds, shortId } from "../format.js";
import { lastValue, points, trainLossKey, xKey } from "../metric_series.js";
import { statusBadge, subjectOf } from "./training_row.js";

function runLabel(req, op) {
  const subject = subjectOf(req);
  const what = req?.symbols?.length ? `${subject.what} ${req.symbols.join(",")} ${req.timeframes.join(",")}` : subject.what;
  return `${op.name ? `${op.name} · ` : ""}${what} (${shortId(op.operation_id)})`;
}

async function loadRun(id) {
  const enc = encodeURIComponent(id);
  const [op, metrics, req] = await Promise.all([api(`/api/v1/operations/${enc}`), api(`/api/v1/operations/${enc}/metrics`), trainingRequest(id)]);
  return { op, metrics, req, label: runLabel(req, op) };
}

function metricsTable(runs) {
  const columns = [
    ["Run", (r, i) => h("span", { style: { color: PALETTE[i % PALETTE.length], fontWeight: 650 } }, h("a", { href: `#/trainings/${r.op.operation_id}`, text: r.label }))],
    ["Status", (r) => statusBadge(r.op.status)],
    ["Epochs / steps", (r) => (xKey(r.metrics.history) === "step" ? `${fmtNumber(lastValue(r.metrics.history, "step"))} steps` : fmtNumber(r.metrics.history.length))],
    ["Best epoch", (r) => fmtNumber(r.metrics.best_epoch)],
    ["Best val loss", (r) => fmtNumber(r.metrics.best_val_loss)],
    ["Final train loss", (r) => fmtNumber(lastValue(r.metrics.history, trainLossKey(r.metrics.history)))],
    ["Test accuracy", (r) => { const a = r.op.result?.test_metrics?.accuracy; return a === undefined ? "—" : fmtPercent(a); }],
    ["Macro F1", (r) => fmtNumber(r.op.result?.test_metrics?.macro_f1, 3)],
    ["Duration", (r) => fmtDuration(runSeconds(r.op))],
  ];
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { id: "compare-table" },
      h("thead", {}, h("tr", {}, columns.map(([t], i) => h("th", { scope: "col", class: i > 1 ? "num" : "", text: t })))),
      h("tbody", {}, runs.map((r, i) => h("tr", { "data-op": r.op.operation_id }, columns.map(([, cell], c) => {
        const v = cell(r, i);
        return h("td", { class: c > 1 ? "num" : "" }, v);
      })))),
    ),
  );
}

/** Each run on its own x: epochs, or steps for a run whose rows carry no epoch (a command run). */
function overlay(runs) {
  const keys = new Set(runs.map((r) => xKey(r.metrics.history)));
  const xLabel = [...keys].join(" / ");
  const series = runs.flatMap((r, i) => {
    const color = PALETTE[i % PALETTE.length];
    const history = r.metrics.history;
    return [
      { name: `${r.label} · train`, points: points(history, trainLossKey(history)), color },
      { name: `${r.label} · validation`, points: points(history, "val_loss"), color, dashed: true },
    ];
  });
  return lineChart({ series, xLabel, yLabel: "loss", height: 280, title: `Loss per ${xLabel}, all selected runs` });
}

export function render(root, query) {
  const selected = new Set((new URLSearchParams(query).get("ids") || "").split(",").filter(Boolean));
  const picker = h("div", { class: "choice-list", id: "compare-picker" }, h("p", { class: "muted", text: "Loading trainings…" }));
  const output = h("div", { id: "compare-output" });
  const error = h("div", { class: "action-error", role: "alert" });
  let seq = 0;

  const draw = async () => {
    window.history.replaceState(null, "", selected.size ? `#/compare?ids=${[...selected].join(",")}` : "#/compare");
    const mine = ++seq;
    if (selected.size < 2) {
      clear(output, h("div", { class: "panel empty", text: "Pick two or more trainings to compare them." }));
      return;
    }
    try {
      const runs = await Promise.all([...selected].map(loadRun));
      if (mine !== seq) return;
      error.textContent = "";
      clear(output,
        h("section", { class: "panel", id: "compare-chart" }, h("h2", { text: "Loss curves" }), h("p", { class: "muted", text: "Solid: train loss. Dashed: validation loss. One colour per run." }), overlay(runs)),
        h("section", { class: "panel" }, h("h2", { text: "Final metrics" }), metricsTable(runs)));
    } catch (exc) {
      error.textContent = `Could not load the selected trainings: ${exc.message}`;
    }
  };

  api("/api/v1/operations?limit=50&type=training")
    .then(async (list) => {
      const reqs = await Promise.all(list.items.map((op) => trainingRequest(op.operation_id)));
      clear(picker, list.items.length ? list.items.map((op, i) => h(
        "label",
        { class: "choice", "data-op": op.operation_id },
        h("input", { type: "checkbox", value: op.operation_id, checked: selected.has(op.operation_id), onchange: (e) => { if (e.target.checked) selected.add(op.operation_id); else selected.delete(op.operation_id); draw(); } }),
        h("span", { style: { flex: 1 } }, h("span", { class: "title", text: runLabel(reqs[i], op) }), h("div", { class: "cell-sub", text: fmtDate(op.created_at) })),
        statusBadge(op.status),
      )) : h("p", { class: "empty", text: "No trainings yet." }));
    })
    .catch((exc) => { error.textContent = `Could not list trainings: ${exc.message}`; });

  root.append(
    pageHead("Compare", "Overlay the loss curves and final metrics of several trainings."),
    error,
    h("div", { class: "compare-layout" },
      h("section", { class: "panel" }, h("h2", { text: "Trainings" }), h("fieldset", {}, h("legend", { class: "sr-only", text: "Trainings to compare" }), picker)),
      output),
  );
  draw();
}
