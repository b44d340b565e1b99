// Sweeps: the list with a "start" form (#/sweeps), and one sweep (#/sweeps/ID): trials sortable by
// objective, objective by trial with the best so far, a parameter-vs-objective scatter, the best trial.

import { api } from "../api.js";
import { lineChart } from "../charts.js";
import { clear, h, pageHead } from "../dom.js";
import { fmtDate, fmtNumber } from "../format.js";

export const SWEEP_BASE_KEY = "modelyard.sweepBase";
const DONE = ["completed", "failed", "cancelled"];

function draftBody() {
  let base = { strategy: "trend_momentum", symbol: "EURUSD", timeframe: "1h", overrides: { epochs: 5 } };
  try {
    const stored = sessionStorage.getItem(SWEEP_BASE_KEY);
    if (stored) base = JSON.parse(stored);
  } catch { /* the default stays */ }
  delete base.idempotency_key;
  const command = base.workload === "command";
  return {
    base,
    space: command
      ? { "command.params.lr": { type: "float", low: 0.001, high: 0.1, log: true } }
      : { "overrides.learning_rate": { type: "float", low: 0.0001, high: 0.1, log: true } },
    objective: { metric: "val_loss", direction: "minimize" },
    n_trials: 12,
    parallelism: 2,
    sampler: "tpe",
    pruner: "median",
  };
}

function startForm() {
  const text = h("textarea", { id: "sweep-body", rows: 18, cols: 80, class: "mono", "aria-label": "Sweep request (JSON)", spellcheck: "false" });
  text.value = JSON.stringify(draftBody(), null, 2);
  const error = h("div", { class: "action-error", id: "sweep-error", role: "alert" });
  const submit = async (event) => {
    event.preventDefault();
    error.textContent = "";
    let body;
    try {
      body = JSON.parse(text.value);
    } catch (exc) {
      error.textContent = `Not JSON: ${exc.message}`;
      return;
    }
    try {
      const res = await api("/api/v1/sweeps", { method: "POST", body });
      sessionStorage.removeItem(SWEEP_BASE_KEY);
      window.location.hash = `#/sweeps/${res.sweep_id}`;
    } catch (exc) {
      error.textContent = `The server did not start the sweep: ${exc.message}`;
    }
  };
  return h("form", { class: "panel", id: "sweep-form", onsubmit: submit },
    h("h2", { text: "Start a sweep" }),
    h("p", { class: "muted", text: "A base training request, a search space over paths into it (overrides.<field>, command.params.<param>, strategy.<path in the YAML>), the objective and how many trials. See docs/api.md, Sweeps." }),
    text, h("div", { class: "toolbar" }, h("button", { type: "submit", class: "btn btn-primary", text: "Start sweep" })), error);
}

function listPage(root) {
  const list = h("div", {}, h("p", { class: "muted", text: "Loading sweeps…" }));
  const load = async () => {
    const { items } = await api("/api/v1/sweeps");
    if (!items.length) {
      clear(list, h("div", { class: "panel empty", text: "No sweeps yet." }));
      return;
    }
    clear(list, h("div", { class: "table-wrap" }, h("table", { id: "sweeps-table" },
      h("thead", {}, h("tr", {}, ["Sweep", "Status", "Objective", "Trials", "Best", "Created"].map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, items.map((s) => h("tr", { "data-sweep": s.sweep_id },
        h("td", {}, h("a", { href: `#/sweeps/${s.sweep_id}`, class: "mono", text: s.name || s.sweep_id })),
        h("td", {}, h("span", { class: `badge ${s.status}`, text: s.status })),
        h("td", { text: `${s.objective.metric} (${s.objective.direction})` }),
        h("td", { class: "num", text: `${Object.values(s.counts).reduce((a, b) => a + b, 0)}/${s.n_trials}` }),
        h("td", { class: "num", text: s.best ? fmtNumber(s.best.objective) : "—" }),
        h("td", { text: fmtDate(s.created_at) })))))));
  };
  root.append(pageHead("Sweeps", "Hyperparameter searches: each trial is a training operation.", h("button", { type: "button", class: "btn", text: "Refresh", onclick: load })), list, startForm());
  load();
  const timer = setInterval(load, 3000);
  return () => clearInterval(timer);
}

function trialsTable(view, sort) {
  const better = view.objective.direction === "minimize" ? 1 : -1;
  const trials = [...view.trials];
  if (sort.by === "objective") {
    trials.sort((a, b) => {
      if (a.objective === null) return 1;
      if (b.objective === null) return -1;
      return sort.dir * better * (a.objective - b.objective);
    });
  }
  const params = Object.keys(view.space);
  const objectiveHead = h("button", { type: "button", class: "btn btn-small", id: "sort-objective", "aria-label": "Sort by objective",
    text: `${view.objective.metric} ${sort.by === "objective" ? (sort.dir > 0 ? "▲" : "▼") : "↕"}`,
    onclick: () => sort.toggle() });
  return h("div", { class: "table-wrap" }, h("table", { id: "trials-table" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Trial" }), h("th", { scope: "col", text: "Status" }), h("th", { scope: "col", class: "num" }, objectiveHead), params.map((p) => h("th", { scope: "col", class: "mono", text: p })), h("th", { scope: "col", text: "Operation" }))),
    h("tbody", {}, trials.map((t) => h("tr", { "data-trial": t.number, class: view.best && view.best.number === t.number ? "best" : "" },
      h("td", { text: String(t.number) }),
      h("td", {}, h("span", { class: `badge ${t.status}`, text: t.status })),
      h("td", { class: "num", "data-objective": t.objective ?? "", text: t.objective === null ? "—" : fmtNumber(t.objective) }),
      params.map((p) => h("td", { class: "num", text: typeof t.params[p] === "number" ? fmtNumber(t.params[p]) : String(t.params[p]) })),
      h("td", {}, t.operation_id ? h("a", { href: `#/trainings/${t.operation_id}`, class: "mono", text: t.operation_id }) : (t.error ? h("span", { class: "trial-error muted", text: t.error }) : "—")))))));
}

function charts(view, param) {
  const done = view.trials.filter((t) => t.objective !== null).sort((a, b) => a.number - b.number);
  const pick = view.objective.direction === "minimize" ? Math.min : Math.max;
  let best = null;
  const bestSoFar = done.map((t) => {
    best = best === null ? t.objective : pick(best, t.objective);
    return [t.number, best];
  });
  const byTrial = lineChart({ title: "Objective by trial", xLabel: "trial", yLabel: view.objective.metric, height: 220,
    series: [{ name: "objective", points: done.map((t) => [t.number, t.objective]), scatter: true }, { name: "best so far", dashed: true, points: bestSoFar }] });
  const numeric = done.filter((t) => typeof t.params[param] === "number");
  const scatter = lineChart({ title: `${param} vs objective`, xLabel: param, yLabel: view.objective.metric, height: 220,
    series: [{ name: param, points: numeric.map((t) => [t.params[param], t.objective]).sort((a, b) => a[0] - b[0]), scatter: true }] });
  return [h("div", { id: "objective-chart" }, byTrial), h("div", { id: "param-scatter" }, scatter)];
}

function detailPage(root, sweepId) {
  const body = h("div", {}, h("p", { class: "muted", text: "Loading sweep…" }));
  const error = h("div", { class: "action-error", role: "alert" });
  const sort = { by: "objective", dir: 1, toggle() { this.dir = -this.dir; draw(); } };
  let view = null;
  let param = null;
  const draw = () => {
    if (!view) return;
    const params = Object.keys(view.space);
    param = param && params.includes(param) ? param : params[0];
    const select = h("select", { id: "scatter-param", "aria-label": "Parameter", onchange: (e) => { param = e.target.value; draw(); } },
      params.map((p) => h("option", { value: p, selected: p === param, text: p })));
    const counts = Object.entries(view.counts).map(([k, v]) => `${k} ${v}`).join(", ") || "no trials yet";
    const best = view.best
      ? h("p", { id: "best-trial" }, "Best: trial ", h("strong", { text: String(view.best.number) }), ` — ${view.objective.metric} ${fmtNumber(view.best.objective)} — `,
        h("a", { href: `#/trainings/${view.best.operation_id}`, text: "open its training" }), view.best_alias ? ` · model alias ${view.best_alias}` : "")
      : h("p", { class: "muted", text: "No completed trial yet." });
    const importances = view.importances
      ? h("p", { class: "muted", text: "Importances" + (view.importances_trials ? ` (from ${view.importances_trials} completed trials)` : "") + ": " + Object.entries(view.importances).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ") }) : null;
    clear(body,
      h("section", { class: "panel" }, h("h2", {}, h("span", { class: "mono", text: view.name || view.sweep_id }), " ", h("span", { id: "sweep-status", class: `badge ${view.status}`, text: view.status })),
        h("p", { class: "muted", text: `${view.trials.length}/${view.n_trials} trials (${counts}), ${view.parallelism} at once · sampler ${view.sampler} · pruner ${view.pruner}` }),
        view.error ? h("div", { class: "action-error", text: view.error }) : null, best, importances),
      h("section", { class: "panel" }, h("h2", { text: "Objective" }), h("div", { class: "toolbar" }, h("label", { text: "Scatter parameter" }), select), ...charts(view, param)),
      h("section", { class: "panel" }, h("h2", { text: "Trials" }), trialsTable(view, sort)));
  };
  const load = async () => {
    try {
      view = await api(`/api/v1/sweeps/${encodeURIComponent(sweepId)}`);
      draw();
    } catch (exc) {
      error.textContent = `Could not load the sweep: ${exc.message}`;
    }
  };
  const cancel = h("button", { type: "button", class: "btn btn-danger", text: "Cancel sweep", onclick: async () => {
    try { await api(`/api/v1/sweeps/${encodeURIComponent(sweepId)}/cancel`, { method: "POST" }); load(); } catch (exc) { error.textContent = `Could not cancel: ${exc.message}`; }
  } });
  root.append(pageHead("Sweep", sweepId, h("a", { class: "btn", href: "#/sweeps", text: "All sweeps" }), cancel), error, body);
  load();
  const timer = setInterval(() => { if (!view || !DONE.includes(view.status)) load(); }, 2000);
  return () => clearInterval(timer);
}

export function render(root, sweepId) {
  return sweepId ? detailPage(root, sweepId) : listPage(root);
}
