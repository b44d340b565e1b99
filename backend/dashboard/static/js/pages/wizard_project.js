// Wizard: the project a training belongs to (pick one or type a new one), its name and its tags.

import { field, h } from "../dom.js";
import { SLUG, currentProject, loadProjects } from "../projects.js";

export const RUN_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$/;
export const MAX_TAGS = 20;

export function initialState() {
  return { project: currentProject() || "default", runName: "", tagsText: "" };
}

/** Tags typed as "a, b c": split on commas and spaces, "#" dropped, duplicates removed. */
export function tagList(text) {
  return [...new Set(String(text || "").split(/[\s,]+/).map((t) => t.replace(/^#/, "")).filter(Boolean))];
}

export function fieldErrors(state) {
  const errors = {};
  if (!SLUG.test(state.project)) errors.project = "A project is 1–64 lower-case letters, digits, '-' or '_', starting with a letter or digit.";
  const name = state.runName.trim();
  if (name && !RUN_NAME.test(name)) errors.runName = "A name is up to 100 letters, digits, '.', '_', '+' or '-', starting with a letter or digit.";
  const tags = tagList(state.tagsText);
  const bad = tags.filter((t) => !SLUG.test(t));
  if (bad.length) errors.tags = `Not a tag: ${bad.join(", ")}. Tags are lower-case letters, digits, '-' and '_'.`;
  else if (tags.length > MAX_TAGS) errors.tags = `At most ${MAX_TAGS} tags.`;
  return errors;
}

export function validate(state) {
  return Object.keys(fieldErrors(state)).length ? "Fix the highlighted fields." : "";
}

/** The request fields this panel fills. */
export function requestFields(state) {
  const out = { project: state.project, tags: tagList(state.tagsText) };
  if (state.runName.trim()) out.name = state.runName.trim();
  return out;
}

/** Server error fields ("project", "name", "tags.3") → the state key of the field to flag. */
export function fieldKey(serverField) {
  const root = String(serverField || "").split(".")[0];
  return { project: "project", name: "runName", tags: "tags" }[root] || "";
}

export function renderPanel(state) {
  const options = h("datalist", { id: "project-options" });
  const make = (key, label, control, hint) => {
    const f = field(label, control, hint);
    control.value = state[key === "tags" ? "tagsText" : key];
    const check = () => f.setError(fieldErrors(state)[key] || "");
    control.addEventListener("input", () => {
      state[key === "tags" ? "tagsText" : key] = control.value;
      check();
    });
    if (state.serverErrors?.[key]) f.setError(state.serverErrors[key]);
    else if (control.value) check();
    return f.wrap;
  };
  const project = make("project", "Project", h("input", { type: "text", name: "project", list: "project-options", autocomplete: "off", spellcheck: false }), "Pick one from the list or type a new one, e.g. speech-2026.");
  const name = make("runName", "Name (optional)", h("input", { type: "text", name: "runName", autocomplete: "off", spellcheck: false, placeholder: "e.g. baseline-lr3e-4" }), "Names the run and its model.");
  const tags = make("tags", "Tags (optional)", h("input", { type: "text", name: "tags", autocomplete: "off", spellcheck: false, placeholder: "baseline, small" }), "Separate tags with commas or spaces.");
  loadProjects().then((items) => options.replaceChildren(...items.map((p) => h("option", { value: p.project, label: `${p.project} (${p.total} trainings)` }))));
  return h(
    "section",
    { class: "panel", id: "wizard-project" },
    h("h2", { text: "Project, name and tags" }),
    h("div", { class: "form-row" }, project, name, tags),
    options,
  );
}
