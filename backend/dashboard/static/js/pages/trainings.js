// Trainings: the operations table, newest first, filterable by status, live while operations run.

import { ACTIVE, STATUSES, api, trainingRequest } from "../api.js";
import { clear, confirmAction, h, pageHead } from "../dom.js";
import { fmtDate, fmtDuration, runSeconds, shortId } from "../format.js";
import { followOperation } from "../live.js";

const LIST_POLL_MS = 3000;
const MAX_STREAMS = 4; // browsers allow ~6 connections per server; leave room for the rest of the page

export function statusBadge(status) {
  return h("span", { class: `badge ${status}`, "data-status": status, text: status });
}

export function progressCell(op) {
  const p = op.progress || {};
  const pct = Math.max(0, Math.min(100, p.percentage || 0));
  const epoch = p.epoch && p.total_epochs ? ` · epoch ${p.epoch}/${p.total_epochs}` : "";
  const phase = op.status === "pending" && op.queue_position ? `queued #${op.queue_position}` : (p.phase || op.status).replaceAll("_", " ");
  return h(
    "div",
    { class: "progress" },
    h("div", { class: `bar ${op.status}`, role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": pct.toFixed(0), "aria-label": `progress of ${op.operation_id}` }, h("span", { style: { width: `${pct}%` } })),
    h("div", { class: "meta" }, h("span", { text: `${phase}${epoch}` }), h("span", { text: `${pct.toFixed(0)}%` })),
  );
}

export function subjectCells(req) {
  if (!req) return [h("span", { class: "cell-main", text: "training" }), h("span", { class: "cell-main", text: "—" })];
  const name = req.strategy || req.dataset || req.plugin || req.workload;
  const data = req.symbols.length ? `${req.symbols.join(", ")} · ${req.timeframes.join(", ")}` : req.dataset || "—";
  return [h("span", { class: "cell-main", text: name }), h("span", { text: data })];
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

function row(op, refresh) {
  const tr = h("tr", { "data-op": op.operation_id });
  const cells = Array.from({ length: 8 }, (_, i) => h("td", { class: i === 6 ? "num" : "" }));
  const [nameCell, dataCell] = cells;
  clear(nameCell, h("a", { href: `#/trainings/${op.operation_id}`, text: shortId(op.operation_id) }));
  trainingRequest(op.operation_id).then((req) => {
    const [name, data] = subjectCells(req);
    clear(nameCell, h("a", { href: `#/trainings/${op.operation_id}` }, name), h("div", { class: "cell-sub mono", text: shortId(op.operation_id) }));
    clear(dataCell, data);
  });
  tr.append(...cells);
  let shownStatus = null;
  // Updates change cells in place, so a focused Stop button keeps its focus while progress moves.
  tr.update = (next) => {
    clear(cells[2], statusBadge(next.status));
    clear(cells[3], progressCell(next));
    cells[4].textContent = next.device ? `${next.execution_mode} · ${next.device}` : next.execution_mode;
    cells[5].textContent = fmtDate(next.started_at || next.created_at);
    cells[6].textContent = fmtDuration(runSeconds(next));
    if (next.status !== shownStatus) {
      clear(cells[7], ACTIVE.has(next.status) && next.status !== "cancelling" ? stopButton(next, refresh) : null);
      shownStatus = next.status;
    }
  };
  tr.update(op);
  return tr;
}

export function render(root, query) {
  const params = new URLSearchParams(query);
  const filter = h("select", { id: "status-filter", "aria-label": "Filter by status" }, h("option", { value: "", text: "All statuses" }), STATUSES.map((st) => h("option", { value: st, text: st })));
  filter.value = params.get("status") || "";
  const body = h("tbody");
  const info = h("div", { class: "action-error", role: "alert" });
  const count = h("span", { class: "muted" });
  const streams = new Map();
  let timer = null;
  let alive = true;

  const updateRow = (op) => {
    const existing = body.querySelector(`tr[data-op="${op.operation_id}"]`);
    if (existing) existing.update(op);
  };

  const follow = (items) => {
    for (const op of items) {
      if (ACTIVE.has(op.status) && !streams.has(op.operation_id) && streams.size < MAX_STREAMS) {
        streams.set(op.operation_id, followOperation(op.operation_id, updateRow, () => streams.delete(op.operation_id)));
      }
    }
  };

  async function load() {
    clearTimeout(timer);
    const qs = filter.value ? `&status=${filter.value}` : "";
    try {
      const list = await api(`/api/v1/operations?limit=50${qs}`);
      if (!alive) return;
      info.textContent = "";
      count.textContent = `${list.total} training${list.total === 1 ? "" : "s"}`;
      const rows = new Map([...body.querySelectorAll("tr[data-op]")].map((tr) => [tr.dataset.op, tr]));
      const reuse = (op) => {
        const tr = rows.get(op.operation_id);
        if (!tr) return row(op, load);
        tr.update(op);
        return tr;
      };
      const same = list.items.length > 0 && list.items.length === rows.size && list.items.every((op, i) => body.rows[i]?.dataset.op === op.operation_id);
      if (same) list.items.forEach(reuse);
      else clear(body, list.items.length ? list.items.map(reuse) : h("tr", {}, h("td", { colspan: 8, class: "empty", text: filter.value ? `No ${filter.value} trainings.` : "No trainings yet. Start one with New training." })));
      follow(list.items);
    } catch (exc) {
      info.textContent = `Could not load trainings: ${exc.message}`;
    }
    if (alive) timer = setTimeout(load, LIST_POLL_MS);
  }

  filter.addEventListener("change", () => {
    window.history.replaceState(null, "", filter.value ? `#/trainings?status=${filter.value}` : "#/trainings");
    load();
  });

  root.append(
    pageHead(
      "Trainings",
      count,
      h("label", { for: "status-filter", class: "sr-only", text: "Status" }),
      filter,
      h("a", { class: "btn btn-primary", href: "#/new", "data-action": "start", text: "+ New training" }),
    ),
    info,
    h(
      "div",
      { class: "panel table-wrap", style: { padding: 0 } },
      h(
        "table",
        { id: "trainings-table" },
        h("thead", {}, h("tr", {}, ["Training", "Data", "Status", "Progress", "Mode · device", "Started", "Duration", ""].map((t, i) => h("th", { scope: "col", class: i === 6 ? "num" : "", text: t })))),
        body,
      ),
    ),
  );
  load();
  return () => {
    alive = false;
    clearTimeout(timer);
    for (const stop of streams.values()) stop();
  };
}
