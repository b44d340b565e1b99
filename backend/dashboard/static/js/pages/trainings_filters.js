// The trainings table's filters: status, workload, tag and "active only", kept in the route's query.

import { STATUSES } from "../api.js";
import { h } from "../dom.js";
import { SLUG } from "../projects.js";

export const WORKLOADS = ["strategy", "tabular", "plugin", "command"];

/** Filters from a route query such as "status=running&tag=baseline&workload=command&active=1". */
export function readFilters(query) {
  const params = new URLSearchParams(query);
  const tag = params.get("tag") || "";
  return {
    status: STATUSES.includes(params.get("status")) ? params.get("status") : "",
    workload: WORKLOADS.includes(params.get("workload")) ? params.get("workload") : "",
    tag: SLUG.test(tag) ? tag : "",
    active: params.get("active") === "1",
  };
}

/** The route query of the filters (and the project, so a link shows the same table). */
export function routeQuery(filters, project) {
  const params = new URLSearchParams();
  if (project) params.set("project", project);
  if (filters.status) params.set("status", filters.status);
  if (filters.workload) params.set("workload", filters.workload);
  if (filters.tag) params.set("tag", filters.tag);
  if (filters.active) params.set("active", "1");
  return params.toString();
}

/** The query of GET /api/v1/operations for the filters and project. */
export function listQuery(filters, project) {
  const params = new URLSearchParams({ limit: "50" });
  if (project) params.set("project", project);
  if (filters.status) params.set("status", filters.status);
  if (filters.workload) params.set("workload", filters.workload);
  if (filters.tag) params.set("tag", filters.tag);
  if (filters.active) params.set("active_only", "true");
  return params.toString();
}

export function anyFilter(filters) {
  return Boolean(filters.status || filters.workload || filters.tag || filters.active);
}

/** The controls of a filters object, which they change in place; then onChange(filters) runs. */
export function filterBar(filters, onChange) {
  const status = h("select", { id: "status-filter", "aria-label": "Filter by status" }, h("option", { value: "", text: "All statuses" }), STATUSES.map((st) => h("option", { value: st, text: st })));
  const workload = h("select", { id: "workload-filter", "aria-label": "Filter by workload" }, h("option", { value: "", text: "All workloads" }), WORKLOADS.map((w) => h("option", { value: w, text: w })));
  const tagList = h("datalist", { id: "tag-filter-options" });
  const tag = h("input", { type: "text", id: "tag-filter", list: "tag-filter-options", placeholder: "tag", autocomplete: "off", spellcheck: false, "aria-label": "Filter by tag", "aria-describedby": "tag-filter-error" });
  const tagError = h("div", { class: "action-error", id: "tag-filter-error", role: "alert" });
  const active = h("input", { type: "checkbox", id: "active-filter" });
  const set = (f) => {
    status.value = f.status;
    workload.value = f.workload;
    tag.value = f.tag;
    active.checked = f.active;
  };
  set(filters);
  const changed = () => onChange(filters);
  status.addEventListener("change", () => { filters.status = status.value; changed(); });
  workload.addEventListener("change", () => { filters.workload = workload.value; changed(); });
  active.addEventListener("change", () => { filters.active = active.checked; changed(); });
  const applyTag = () => {
    const value = tag.value.trim().replace(/^#/, "").toLowerCase();
    if (value && !SLUG.test(value)) {
      tagError.textContent = "A tag is lower-case letters, digits, '-' and '_'.";
      tag.setAttribute("aria-invalid", "true");
      return;
    }
    tagError.textContent = "";
    tag.removeAttribute("aria-invalid");
    if (value === filters.tag) return;
    filters.tag = value;
    onChange(filters);
  };
  tag.addEventListener("change", applyTag);
  tag.addEventListener("keydown", (e) => { if (e.key === "Enter") applyTag(); });
  const node = h(
    "div",
    { class: "toolbar filters", role: "group", "aria-label": "Filters" },
    h("label", { for: "status-filter", class: "sr-only", text: "Status" }), status,
    h("label", { for: "workload-filter", class: "sr-only", text: "Workload" }), workload,
    h("div", { class: "tag-filter" }, h("label", { for: "tag-filter", class: "sr-only", text: "Tag" }), tag, tagList, tagError),
    h("label", { class: "check", for: "active-filter" }, active, "Active only"),
  );
  /** Offer the tags seen so far as suggestions. */
  const offerTags = (tags) => {
    tagList.replaceChildren(...[...tags].sort().map((t) => h("option", { value: t })));
  };
  return { node, set, offerTags };
}
