// One row of the trainings table, and the cells other pages reuse: status badge, progress, Stop button.

import { ACTIVE, api, trainingRequest } from "../api.js";
import { clear, confirmAction, h } from "../dom.js";
import { fmtDate, fmtDuration, runSeconds, shortId } from "../format.js";

export const COLUMNS = ["Training", "Data", "Status", "Progress", "Mode · device", "Started", "Duration", ""];

export function statusBadge(status) {
  return h("span", { class: `badge ${status}`, "data-status": status, text: status });
}

const STEP_MESSAGE = /^step \d+/;

/** A run counted in steps rather than epochs: a command run (by its view or its request), or one
 * whose progress says "step N/M". */
export function countsSteps(op, req = null) {
  const p = op.progress || {};
  return op.workload === "command" || req?.workload === "command" || (!p.epoch && STEP_MESSAGE.test(p.message || ""));
}

/** "epoch 3/10", or for a run counted in steps its progress message ("step 300/1000"). */
function progressDetail(op, p) {
  if (p.epoch && p.total_epochs) return ` · epoch ${p.epoch}/${p.total_epochs}`;
  if (!p.epoch && STEP_MESSAGE.test(p.message || "")) return ` · ${p.message}`;
  return "";
}

export function progressCell(op) {
  const p = op.progress || {};
  const pct = Math.max(0, Math.min(100, p.percentage || 0));
  const phase = op.status === "pending" && op.queue_position ? `queued #${op.queue_position}` : (p.phase || op.status).replaceAll("_", " ");
  return h(
    "div",
    { class: "progress" },
    h("div", { class: `bar ${op.status}`, role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": pct.toFixed(0), "aria-label": `progress of ${op.operation_id}` }, h("span", { style: { width: `${pct}%` } })),
    h("div", { class: "meta" }, h("span", { text: `${phase}${progressDetail(op, p)}` }), h("span", { text: `${pct.toFixed(0)}%` })),
  );
}

/** What a request trains (strategy, command, dataset…) and on which data. */
export function subjectOf(req) {
  if (!req) return { what: "training", data: "—" };
  const what = req.command?.name || req.strategy || req.dataset || req.plugin || req.workload;
  const data = req.symbols?.length ? `${req.symbols.join(", ")} · ${req.timeframes.join(", ")}` : req.command?.dataset || req.dataset || "—";
  return { what, data };
}

export function subjectCells(req) {
  const { what, data } = subjectOf(req);
  return [h("span", { class: "cell-main", text: what }), h("span", { text: data })];
}

/** Project and tag chips; a tag chip is a button that filters by its tag when onTag is given. */
export function chips(op, { showProject = true, onTag = null } = {}) {
  const tags = op.tags || [];
  if (!tags.length && !(showProject && op.project)) return null;
  return h(
    "div",
    { class: "chips" },
    showProject && op.project ? h("span", { class: "chip chip-project", "data-project": op.project, title: "project", text: op.project }) : null,
    tags.map((tag) => onTag
      ? h("button", { type: "button", class: "chip chip-tag", "data-tag": tag, "aria-label": `Show only trainings tagged ${tag}`, text: `#${tag}`, onclick: () => onTag(tag) })
      : h("span", { class: "chip chip-tag", "data-tag": tag, text: `#${tag}` })),
  );
}

/** A Stop button that asks first, then cancels; its error appears beside it. */
export function stopButton(op, onDone) {
  const error = h("div", { class: "action-error", role: "alert" });
  const button = h("button", {
    type: "button",
    class: "btn btn-danger btn-small",
    "data-action": "stop",
    "aria-label": `Stop training ${op.operation_id}`,
    text: "Stop",
    onclick: async () => {
      const yes = await confirmAction("Stop this training?", `Training ${shortId(op.operation_id)} stops within one batch. No model is saved for a stopped training.`, "Stop training");
      if (!yes) return;
      button.disabled = true;
      error.textContent = "";
      try {
        onDone(await api(`/api/v1/operations/${encodeURIComponent(op.operation_id)}/cancel`, { method: "POST" }));
      } catch (exc) {
        error.textContent = `Could not stop: ${exc.message}`;
        button.disabled = false;
      }
    },
  });
  return h("div", {}, button, error);
}

/** Whether a training can run again: failed (interrupted included) or cancelled. */
export const RETRYABLE = new Set(["failed", "cancelled"]);

/** A Retry button: the training runs again as a new attempt, resuming from its last checkpoint. */
export function retryButton(op, onDone) {
  const error = h("div", { class: "action-error", role: "alert" });
  const button = h("button", {
    type: "button",
    class: "btn btn-small",
    "data-action": "retry",
    "aria-label": `Retry training ${op.operation_id} from its last checkpoint`,
    text: "Retry",
    onclick: async () => {
      button.disabled = true;
      error.textContent = "";
      try {
        onDone(await api(`/api/v1/operations/${encodeURIComponent(op.operation_id)}/retry`, { method: "POST", body: { from_checkpoint: true } }));
      } catch (exc) {
        error.textContent = `Could not retry: ${exc.message}`;
        button.disabled = false;
      }
    },
  });
  return h("div", {}, button, error);
}

/** "attempt 2 · resumed from epoch 5 on local backend bk_…" for an operation run more than once ("" otherwise). */
export function attemptText(op) {
  const attempts = op.attempt_history || [];
  if (attempts.length < 2) return "";
  const last = attempts[attempts.length - 1];
  const from = last.resumed_from_epoch ? `resumed from epoch ${last.resumed_from_epoch}` : last.from_checkpoint ? "from its last checkpoint" : "from scratch";
  const earlier = attempts.slice(0, -1).map((a) => `#${a.number} ${a.outcome}${a.error ? ` (${a.error.code})` : ""}`).join(", ");
  return `attempt ${last.number} · ${from}${last.where ? ` on ${last.where}` : ""} · earlier: ${earlier}`;
}

function nameCell(cell, op, req, options) {
  const href = `#/trainings/${op.operation_id}`;
  const { what } = subjectOf(req);
  const name = op.name || req?.name;
  const title = name ? h("span", { class: "cell-main", "data-name": name, text: name }) : req ? h("span", { class: "cell-main", text: what }) : shortId(op.operation_id);
  const sub = [name && req ? what : null, name || req ? shortId(op.operation_id) : null].filter(Boolean).join(" · ");
  clear(cell, h("a", { href }, title), h("div", { class: "cell-sub mono", text: sub }), chips(op, options));
}

/** Who did what, from the tokens that asked: "submitted by laptop · cancelled by ops" ("" without tokens). */
export function whoText(op) {
  return [op.submitted_by && `submitted by ${op.submitted_by}`, op.cancelled_by && `cancelled by ${op.cancelled_by}`].filter(Boolean).join(" · ");
}

/** A table row that updates in place (row.update(op)), so a focused Stop button keeps its focus. */
export function trainingRow(op, refresh, options = {}) {
  const tr = h("tr", { "data-op": op.operation_id });
  const cells = COLUMNS.map((_, i) => h("td", { class: i === 6 ? "num" : "" }));
  nameCell(cells[0], op, null, options);
  trainingRequest(op.operation_id).then((req) => {
    nameCell(cells[0], op, req, options);
    clear(cells[1], subjectCells(req)[1]);
  });
  tr.append(...cells);
  let shownStatus = null;
  tr.update = (next) => {
    clear(cells[2], statusBadge(next.status));
    clear(cells[3], progressCell(next));
    cells[4].textContent = next.device ? `${next.execution_mode} · ${next.device}` : next.execution_mode;
    const who = whoText(next);
    clear(cells[5], fmtDate(next.started_at || next.created_at), who ? h("div", { class: "who", text: who }) : null);
    cells[6].textContent = fmtDuration(runSeconds(next));
    if (next.status !== shownStatus) {
      clear(cells[7], ACTIVE.has(next.status) && next.status !== "cancelling" ? stopButton(next, refresh) : null);
      shownStatus = next.status;
    }
  };
  tr.update(op);
  return tr;
}
