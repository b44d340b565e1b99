// One training: live progress, loss and learning-rate plots, log, decisions, and the outcome.

import { ACTIVE, api, trainingRequest } from "../api.js";
import { lineChart } from "../charts.js";
import { lastValue, lossSeries, points, xKey } from "../metric_series.js";
import { clear, h } from "../dom.js";
import { fmtDuration, fmtNumber, fmtPercent, runSeconds, shortId } from "../format.js";
import { followOperation } from "../live.js";
import { logViewer } from "./log_viewer.js";
import { resultPanels } from "./training_results.js";
import { attemptText, chips, countsSteps, progressCell, RETRYABLE, retryButton, statusBadge, stopButton, subjectOf, whoText } from "./training_row.js";

const METRICS_THROTTLE_MS = 400;

const STEP_METRICS_THROTTLE_MS = 700;
const COMMAND_PHASES = ["starting", "running", "collecting", "storing"];

/** Starting → running → collecting → storing, the current phase marked. */
function phaseList(op) {
  const phase = op.progress?.phase;
  const at = COMMAND_PHASES.indexOf(phase);
  const done = op.status === "completed";
  return h("ol", { class: "phases", id: "command-phases", "aria-label": "Phases" }, COMMAND_PHASES.map((name, i) =>
    h("li", { class: done || i < at ? "done" : "", "aria-current": !done && i === at ? "step" : null, "data-phase": name, text: name })));
}

function card(label, value, id) {
  return h("div", { class: "card", id }, h("div", { class: "label", text: label }), h("div", { class: "value", text: value }));
}

function decisionList(decisions) {
  if (!decisions.length) return h("p", { class: "muted", text: "No decisions yet: early stopping, LR changes and checkpoints appear here." });
  return h("ul", { class: "stack", style: { listStyle: "none", padding: 0, gap: ".4rem" } }, decisions.map((d) =>
    h("li", {}, h("span", { class: "badge", text: String(d.kind || "decision").replaceAll("_", " ") }), " ", h("strong", { text: d.epoch ? `epoch ${d.epoch}: ` : "" }), d.message || "")));
}

export function render(root, id) {
  const title = h("h1", { text: `Training ${shortId(id)}` });
  const sub = h("div", { class: "sub mono", text: id });
  const who = h("p", { class: "who", id: "who" });
  const actions = h("div", { class: "toolbar" });
  const progress = h("section", { class: "panel", id: "progress-panel" });
  const cards = h("div", { class: "cards", id: "current-metrics" });
  const lossBox = h("div", { id: "loss-chart" });
  const lrBox = h("div", { id: "lr-chart" });
  const decisions = h("div", { id: "decisions" });
  const results = h("div", { id: "results" });
  const error = h("div", { class: "action-error", role: "alert" });
  const logs = logViewer(id);
  // A command run keeps its whole output on the server; the log panel shows a rate-limited part of it.
  const outputLink = h("a", { class: "btn btn-small", id: "output-link", href: `/api/v1/operations/${encodeURIComponent(id)}/output`, text: "Full output" });
  let metricsTimer = null;
  let lastEpochSeen = null;
  let lastStepSeen = null;
  let lastStep = "—";
  let shownStatus = null;
  let epochMetrics = {};

  let request = null;
  let named = null;
  const showTitle = () => {
    const subject = request ? subjectOf(request) : null;
    const what = subject ? [subject.what, subject.data === "—" ? "" : subject.data].filter(Boolean).join(" · ") : "";
    const name = named || request?.name;
    if (name) title.textContent = what ? `${name} — ${what}` : name;
    else if (what) title.textContent = what;
  };
  trainingRequest(id).then((req) => {
    request = req;
    showTitle();
    if (req?.workload === "command") logs.panel.querySelector("h2")?.append(" ", outputLink);
  });

  const drawMetrics = (m) => {
    const x = xKey(m.history);
    clear(lossBox, lineChart({ series: lossSeries(m.history), xLabel: x, yLabel: "loss", title: `Loss per ${x}` }));
    clear(lrBox, lineChart({ series: [{ name: "learning rate", points: points(m.history, "lr", x), color: "#7c3aed" }], xLabel: x, yLabel: "lr", height: 180, title: `Learning rate per ${x}` }));
    clear(decisions, decisionList(m.decisions || []));
    // A finished run's page never sees a "step N/M" message: read its last step from the history.
    const last = lastValue(m.history, "step");
    if (x === "step" && lastStep === "—" && last !== undefined) {
      lastStep = fmtNumber(last);
      const value = cards.querySelector("#card-step .value");
      if (value) value.textContent = lastStep;
    }
  };
  const loadMetrics = async () => {
    try {
      drawMetrics(await api(`/api/v1/operations/${encodeURIComponent(id)}/metrics`));
    } catch (exc) {
      error.textContent = `Could not load metrics: ${exc.message}`;
    }
  };
  const scheduleMetrics = (delay = METRICS_THROTTLE_MS) => {
    if (!metricsTimer) metricsTimer = setTimeout(() => { metricsTimer = null; loadMetrics(); }, delay);
  };

  const update = (op) => {
    const p = op.progress || {};
    const stepRun = countsSteps(op, request);
    if (named === null) {
      named = op.name || "";
      showTitle();
      clear(sub, id, chips(op));
    }
    // Batch reports carry only the running loss; keep the last finished epoch's metrics beside it.
    // Step reports carry whichever metrics that step logged; keep the latest of each.
    if (stepRun) epochMetrics = { ...epochMetrics, ...(p.metrics || {}) };
    else if ((p.metrics || {}).train_loss !== undefined) epochMetrics = p.metrics;
    const m = { ...epochMetrics, ...(p.metrics || {}) };
    who.textContent = [whoText(op), attemptText(op)].filter(Boolean).join(" · ");
    clear(progress, h("h2", {}, "Progress", statusBadge(op.status)), progressCell(op), stepRun ? phaseList(op) : null, h("p", { class: "muted", style: { margin: ".5rem 0 0" }, text: p.message || op.mode_reason }));
    const step = (p.message || "").match(/step (\d+)(?:\s*\/\s*(\d+))?/);
    if (step) lastStep = step[2] ? `${step[1]} / ${step[2]}` : step[1];
    clear(cards,
      stepRun
        ? card("Step", lastStep, "card-step")
        : card("Epoch", p.epoch ? `${p.epoch} / ${p.total_epochs ?? "?"}` : "—", "card-epoch"),
      card("Train loss", fmtNumber(m.train_loss ?? m.loss)),
      card("Val loss", fmtNumber(m.val_loss)),
      card("Val accuracy", m.val_accuracy === undefined ? "—" : fmtPercent(m.val_accuracy)),
      card("Learning rate", fmtNumber(m.lr)),
      card("Mode · device", op.device ? `${op.execution_mode} · ${op.device}` : op.execution_mode),
      card("Duration", fmtDuration(runSeconds(op))));
    if (op.status !== shownStatus) {
      clear(actions, ACTIVE.has(op.status) && op.status !== "cancelling" ? stopButton(op, update) : null, RETRYABLE.has(op.status) ? retryButton(op, () => window.location.reload()) : null, h("a", { class: "btn", href: `#/compare?ids=${id}`, text: "Compare…" }), h("a", { class: "btn", href: "#/trainings", text: "All trainings" }));
      shownStatus = op.status;
    }
    // A new epoch number means the previous epoch's record exists: reload the history. (Progress events
    // are coalesced, so the epoch-end report itself may never reach the page.)
    if (p.epoch && p.epoch !== lastEpochSeen) {
      lastEpochSeen = p.epoch;
      scheduleMetrics();
    }
    // A step run logs rows without an epoch-end report: reload while its progress moves.
    const mark = `${p.message}|${p.percentage}`;
    if (stepRun && op.status === "running" && mark !== lastStepSeen) {
      lastStepSeen = mark;
      scheduleMetrics(STEP_METRICS_THROTTLE_MS);
    }
  };
  const finish = (op) => {
    logs.finish();
    loadMetrics();
    clear(results, resultPanels(op));
  };

  root.append(
    h("div", { class: "page-head" }, h("div", {}, title, sub, who), actions),
    error,
    progress,
    cards,
    h("div", { class: "grid-2" },
      h("section", { class: "panel" }, h("h2", { text: "Loss" }), lossBox),
      h("section", { class: "panel" }, h("h2", { text: "Learning rate" }), lrBox)),
    h("div", { class: "grid-2", style: { marginTop: "1rem" } }, logs.panel, h("section", { class: "panel" }, h("h2", { text: "Decisions" }), decisions)),
    h("div", { style: { marginTop: "1rem" } }, results),
  );
  loadMetrics();
  const unfollow = followOperation(id, update, finish);
  // A missing operation: the SSE answers 404, polling then reports it.
  api(`/api/v1/operations/${encodeURIComponent(id)}`).catch((exc) => { error.textContent = exc.message; });
  return () => {
    unfollow();
    logs.stop();
    clearTimeout(metricsTimer);
  };
}
