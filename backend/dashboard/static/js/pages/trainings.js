// Trainings: the operations table, newest first, narrowed by project (header switcher) and filters,
// live while operations run.

import { ACTIVE, api } from "../api.js";
import { clear, h, pageHead } from "../dom.js";
import { followOperation } from "../live.js";
import { PROJECT_EVENT, currentProject, loadProjects, setProject } from "../projects.js";
import { COLUMNS, trainingRow } from "./training_row.js";
import { anyFilter, filterBar, listQuery, readFilters, routeQuery } from "./trainings_filters.js";

const LIST_POLL_MS = 3000;
const PROJECTS_REFRESH_MS = 10_000;
const MAX_STREAMS = 4; // browsers allow ~6 connections per server; leave room for the rest of the page

function emptyText(filters, project) {
  if (anyFilter(filters)) return "No trainings match these filters.";
  if (project) return `No trainings in project ${project} yet. Start one with New training.`;
  return "No trainings yet. Start one with New training.";
}

export function render(root, query) {
  const params = new URLSearchParams(query);
  if (params.has("project")) setProject(params.get("project"));
  const filters = readFilters(query);
  const body = h("tbody");
  const info = h("div", { class: "action-error", role: "alert" });
  const count = h("span", { class: "muted", id: "trainings-count" });
  const streams = new Map();
  const seenTags = new Set();
  let timer = null;
  let alive = true;
  let projectsAt = Date.now();
  let seq = 0;

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

  const rowOptions = () => ({ showProject: !currentProject(), onTag: (tag) => changeFilters({ ...filters, tag }) });

  async function load() {
    clearTimeout(timer);
    const mine = ++seq;
    const project = currentProject();
    try {
      const list = await api(`/api/v1/operations?${listQuery(filters, project)}`);
      if (!alive || mine !== seq) return;
      info.textContent = "";
      count.textContent = `${list.total} training${list.total === 1 ? "" : "s"}${project ? ` in ${project}` : ""}`;
      const rows = new Map([...body.querySelectorAll("tr[data-op]")].map((tr) => [tr.dataset.op, tr]));
      const reuse = (op) => {
        const tr = rows.get(op.operation_id);
        if (!tr) return trainingRow(op, load, rowOptions());
        tr.update(op);
        return tr;
      };
      const same = list.items.length > 0 && list.items.length === rows.size && list.items.every((op, i) => body.rows[i]?.dataset.op === op.operation_id);
      if (same) list.items.forEach(reuse);
      else clear(body, list.items.length ? list.items.map(reuse) : h("tr", {}, h("td", { colspan: COLUMNS.length, class: "empty", text: emptyText(filters, project) })));
      for (const op of list.items) for (const tag of op.tags || []) seenTags.add(tag);
      bar.offerTags(seenTags);
      follow(list.items);
      if (Date.now() - projectsAt > PROJECTS_REFRESH_MS) {
        projectsAt = Date.now();
        loadProjects();
      }
    } catch (exc) {
      if (mine === seq) info.textContent = `Could not load trainings: ${exc.message}`;
    }
    if (alive && mine === seq) timer = setTimeout(load, LIST_POLL_MS);
  }

  /** Show the filters in the route and load the table from scratch (rows depend on the project). */
  const reload = () => {
    const qs = routeQuery(filters, currentProject());
    window.history.replaceState(null, "", qs ? `#/trainings?${qs}` : "#/trainings");
    for (const stop of streams.values()) stop();
    streams.clear();
    clear(body);
    load();
  };
  function changeFilters(next) {
    Object.assign(filters, next);
    bar.set(filters);
    reload();
  }
  const bar = filterBar(filters, reload);
  window.addEventListener(PROJECT_EVENT, reload);

  root.append(
    pageHead("Trainings", count, bar.node, h("a", { class: "btn btn-primary", href: "#/new", "data-action": "start", text: "+ New training" })),
    info,
    h(
      "div",
      { class: "panel table-wrap", style: { padding: 0 } },
      h(
        "table",
        { id: "trainings-table" },
        h("thead", {}, h("tr", {}, COLUMNS.map((t, i) => h("th", { scope: "col", class: i === 6 ? "num" : "", text: t })))),
        body,
      ),
    ),
  );
  reload();
  return () => {
    alive = false;
    clearTimeout(timer);
    window.removeEventListener(PROJECT_EVENT, reload);
    for (const stop of streams.values()) stop();
  };
}
