// System: device, execution modes, queue, hosts (when the API has them), the Ray cluster and the default
// execution mode.

import { api, apiSchema } from "../api.js";
import { clear, field, h, pageHead } from "../dom.js";
import { fmtDate } from "../format.js";

const REFRESH_MS = 5000;
const MODE_PATH = "/api/v1/system/execution-mode";
const HOST_PATHS = ["/api/v1/system/hosts", "/api/v1/hosts"];
const HOST_COLUMNS = ["url", "healthy", "device_kind", "device_name", "capacity", "sessions_in_use", "checked_at", "error"];

function card(label, value, id) {
  return h("div", { class: "card", id }, h("div", { class: "label", text: label }), h("div", { class: "value", text: String(value) }));
}

function cellValue(key, value) {
  if (typeof value === "boolean") return h("span", { class: `badge ${value ? "available" : "unavailable"}`, text: value ? "yes" : "no" });
  if (/health|status|state/.test(key) && typeof value === "string") {
    const good = /ok|healthy|up|online|ready|available/i.test(value);
    return h("span", { class: `badge ${good ? "available" : "unavailable"}`, text: value });
  }
  if (value && typeof value === "object") return h("span", { class: "mono", text: Object.entries(value).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ") });
  if (typeof value === "string" && /_at$/.test(key)) return fmtDate(value);
  return value === null || value === undefined ? "—" : String(value);
}

/** Hosts as a table whatever fields the host API reports (health, capacity, devices …). */
function hostsTable(hosts) {
  if (!hosts.length) return h("p", { class: "muted", text: "No hosts are configured. Trainings run in-process." });
  const present = new Set(hosts.flatMap((x) => Object.keys(x)));
  const keys = [...HOST_COLUMNS.filter((k) => present.has(k)), ...[...present].filter((k) => !HOST_COLUMNS.includes(k))].slice(0, 8);
  return h("div", { class: "table-wrap" }, h("table", { id: "hosts-table" },
    h("thead", {}, h("tr", {}, keys.map((k) => h("th", { scope: "col", text: k.replaceAll("_", " ") })))),
    h("tbody", {}, hosts.map((x) => h("tr", {}, keys.map((k) => h("td", {}, cellValue(k, x[k]))))))));
}

/** The Ray cluster of ray mode (``sys.ray``): address, version, nodes, CPUs, GPUs, health. */
function rayPanel(ray) {
  if (!ray) return h("p", { class: "muted", id: "ray-none", text: "No Ray cluster is configured (MODELYARD_RAY_ADDRESS)." });
  const rows = [
    ["address", ray.address],
    ["healthy", ray.healthy],
    ["version", ray.version],
    ["nodes", ray.nodes],
    ["CPUs free / total", `${ray.free_cpus} / ${ray.cpus}`],
    ["GPUs free / total", `${ray.free_gpus} / ${ray.gpus}`],
    ["checked_at", ray.checked_at],
    ["error", ray.error],
  ];
  return h("div", { class: "table-wrap" }, h("table", { id: "ray-table" },
    h("tbody", {}, rows.map(([k, v]) => h("tr", {}, h("th", { scope: "row", text: k.replaceAll("_", " ") }), h("td", {}, cellValue(k, v)))))));
}

async function loadHosts(schema, sys) {
  if (Array.isArray(sys.hosts)) return sys.hosts;
  const path = HOST_PATHS.find((p) => schema.paths?.[p]?.get);
  if (!path) return null;
  const body = await api(path);
  return Array.isArray(body) ? body : body.items || body.hosts || [];
}

/** The property name PUT execution-mode expects, read from the OpenAPI schema (default "mode"). */
function modeProperty(schema) {
  const ref = schema.paths?.[MODE_PATH]?.put?.requestBody?.content?.["application/json"]?.schema?.$ref;
  const props = ref ? schema.components?.schemas?.[ref.split("/").pop()]?.properties || {} : {};
  return ["mode", "default_execution_mode", "execution_mode"].find((k) => k in props) || "mode";
}

function modeEditor(sys, schema, onSaved) {
  if (!schema.paths?.[MODE_PATH]?.put) {
    return h("div", {}, h("p", {}, "Default execution mode: ", h("strong", { id: "default-mode", text: sys.default_execution_mode })),
      h("p", { class: "muted", text: "This backend has no API to change it; set MODELYARD_DEFAULT_EXECUTION_MODE and restart." }));
  }
  const select = h("select", { id: "default-mode-select" }, sys.execution_modes.map((m) => h("option", { value: m.mode, text: m.mode })));
  select.value = sys.default_execution_mode;
  const f = field("Default execution mode", select, "Used when a training does not name a mode.");
  const status = h("div", { role: "status", "aria-live": "polite" });
  const save = h("button", { type: "submit", class: "btn btn-primary", text: "Save" });
  return h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      f.setError("");
      clear(status);
      save.disabled = true;
      try {
        await api(MODE_PATH, { method: "PUT", body: { [modeProperty(schema)]: select.value } });
        status.append(h("div", { class: "notice ok", text: `Default execution mode is now ${select.value}.` }));
        onSaved();
      } catch (exc) {
        f.setError(`Not changed: ${exc.message}`);
      } finally {
        save.disabled = false;
      }
    },
  }, f.wrap, save, status);
}

export function render(root) {
  const cards = h("div", { class: "cards", id: "system-cards" });
  const modes = h("div");
  const hosts = h("div", {}, h("p", { class: "muted", text: "Loading…" }));
  const ray = h("div", {}, h("p", { class: "muted", text: "Loading…" }));
  const editor = h("div");
  const error = h("div", { class: "action-error", role: "alert" });
  let timer = null;
  let alive = true;
  let editorDrawn = false;

  const load = async () => {
    clearTimeout(timer);
    try {
      const [sys, schema] = await Promise.all([api("/api/v1/system"), apiSchema()]);
      if (!alive) return;
      error.textContent = "";
      clear(cards, card("Device", sys.device, "card-device"), card("Queue depth", sys.queue_depth, "card-queue"), card("Running", sys.running), card("Local slots", sys.local_concurrency), card("Version", sys.version), card("Database", sys.database.split(":")[0]));
      clear(modes, h("div", { class: "table-wrap" }, h("table", { id: "modes-table" },
        h("thead", {}, h("tr", {}, ["Mode", "State", "Detail"].map((t) => h("th", { scope: "col", text: t })))),
        h("tbody", {}, sys.execution_modes.map((m) => h("tr", {}, h("td", {}, h("strong", { text: m.mode }), m.mode === sys.default_execution_mode ? h("span", { class: "badge latest", style: { marginLeft: ".4rem" }, text: "default" }) : null), h("td", {}, h("span", { class: `badge ${m.available ? "available" : "unavailable"}`, text: m.available ? "available" : "unavailable" })), h("td", { text: m.detail })))))));
      if (!editorDrawn) {
        clear(editor, modeEditor(sys, schema, load));
        editorDrawn = true;
      }
      clear(ray, rayPanel(sys.ray));
      const list = await loadHosts(schema, sys).catch((exc) => {
        throw new Error(`hosts: ${exc.message}`);
      });
      clear(hosts, list === null ? h("p", { class: "muted", text: "This backend reports no hosts (host mode is not set up)." }) : hostsTable(list));
    } catch (exc) {
      error.textContent = `Could not load the system state: ${exc.message}`;
    }
    if (alive) timer = setTimeout(load, REFRESH_MS);
  };

  root.append(
    pageHead("System", "Where trainings run and how busy the service is."),
    error,
    cards,
    h("div", { class: "grid-2" },
      h("section", { class: "panel" }, h("h2", { text: "Execution modes" }), modes),
      h("section", { class: "panel" }, h("h2", { text: "Default execution mode" }), editor)),
    h("section", { class: "panel", style: { marginTop: "1rem" } }, h("h2", { text: "Hosts" }), hosts),
    h("section", { class: "panel", style: { marginTop: "1rem" } }, h("h2", { text: "Ray cluster" }), ray),
  );
  load();
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}
