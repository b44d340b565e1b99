// The project switcher in the header: "All projects" or one project, kept in localStorage. Pages that
// depend on it listen for PROJECT_EVENT on window.

import { api, apiSchema } from "./api.js";
import { clear, h } from "./dom.js";

const STORAGE_KEY = "modelyard.project";
const PROJECTS_PATH = "/api/v1/projects";
export const PROJECT_EVENT = "modelyard:project";
/** A project or tag slug, as the server checks it. */
export const SLUG = /^[a-z0-9][a-z0-9_-]{0,63}$/;

let select = null;
let known = [];

export function currentProject() {
  try {
    return localStorage.getItem(STORAGE_KEY) || "";
  } catch {
    return ""; // storage blocked: the choice lasts as long as the page
  }
}

/** Pick a project ("" = all); tells the pages when the choice changed. */
export function setProject(slug) {
  const value = SLUG.test(slug || "") ? slug : "";
  const changed = value !== currentProject();
  try {
    if (value) localStorage.setItem(STORAGE_KEY, value);
    else localStorage.removeItem(STORAGE_KEY);
  } catch {
    // see currentProject
  }
  if (select) drawOptions();
  if (changed) window.dispatchEvent(new CustomEvent(PROJECT_EVENT, { detail: value }));
}

/** The projects the server knows, with counts; [] on a server without GET /api/v1/projects. */
export async function loadProjects() {
  const schema = await apiSchema();
  if (!schema.paths?.[PROJECTS_PATH]) return [];
  try {
    known = (await api(PROJECTS_PATH)).items || [];
  } catch {
    // keep the last list; the next refresh retries
  }
  if (select) drawOptions();
  return known;
}

function drawOptions() {
  const chosen = currentProject();
  const total = known.reduce((sum, p) => sum + (p.total || 0), 0);
  const names = known.map((p) => p.project);
  // A project picked before it has any training (or typed in a link) stays selectable.
  const extra = chosen && !names.includes(chosen) ? [{ project: chosen, total: 0 }] : [];
  clear(
    select,
    h("option", { value: "", text: known.length ? `All projects (${total})` : "All projects" }),
    [...known, ...extra].map((p) => h("option", { value: p.project, "data-project": p.project, text: `${p.project} (${p.total || 0})` })),
  );
  select.value = chosen;
}

/** Builds the switcher into the header slot and keeps its counts fresh. */
export function mountSwitcher(slot) {
  // Its own accessible name, so it is not confused with the wizard's "Project" field.
  select = h("select", { id: "project-switcher", "aria-label": "Show project", "aria-describedby": "project-switcher-hint" });
  select.addEventListener("change", () => setProject(select.value));
  drawOptions();
  clear(
    slot,
    h("span", { class: "label-text", "aria-hidden": "true", text: "Project" }),
    select,
    h("div", { class: "sr-only", id: "project-switcher-hint", text: "Filters the trainings table." }),
  );
  loadProjects();
}
