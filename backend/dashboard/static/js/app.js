// Hash routing: each route renders into <main> and returns a cleanup function run on leaving it.

import { api, apiFile } from "./api.js";
import { clear, h } from "./dom.js";
import { mountSwitcher } from "./projects.js";
import { AUTH_EVENT, forgetToken, storedToken } from "./session.js";
import * as signIn from "./pages/sign_in.js";
import * as trainings from "./pages/trainings.js";
import * as training from "./pages/training.js";
import * as wizard from "./pages/wizard.js";
import * as models from "./pages/models.js";
import * as compare from "./pages/compare.js";
import * as system from "./pages/system.js";
import * as data from "./pages/data.js";
import * as sweeps from "./pages/sweeps.js";

const ROUTES = [
  { pattern: /^#\/trainings\/([^/?]+)$/, nav: "trainings", page: training },
  { pattern: /^#\/trainings(?:\?(.*))?$/, nav: "trainings", page: trainings },
  { pattern: /^#\/new$/, nav: "new", page: wizard },
  { pattern: /^#\/data(?:\/(.+))?$/, nav: "data", page: data },
  { pattern: /^#\/models$/, nav: "models", page: models },
  { pattern: /^#\/compare(?:\?(.*))?$/, nav: "compare", page: compare },
  { pattern: /^#\/system$/, nav: "system", page: system },
  { pattern: /^#\/sweeps\/([^/?]+)$/, nav: "sweeps", page: sweeps },
  { pattern: /^#\/sweeps$/, nav: "sweeps", page: sweeps },
];

const main = () => document.getElementById("main");
let cleanup = null;
let signingIn = false;

function route() {
  signingIn = false;
  showSignOut();
  const hash = window.location.hash || "#/trainings";
  const match = ROUTES.map((r) => ({ r, m: hash.match(r.pattern) })).find((x) => x.m);
  if (cleanup) cleanup();
  cleanup = null;
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (match && link.dataset.nav === match.r.nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const root = clear(main());
  if (!match) {
    root.append(h("h1", { text: "Page not found" }), h("p", {}, "No page at ", h("code", { text: hash }), ". ", h("a", { href: "#/trainings", text: "Go to trainings" })));
    return;
  }
  const result = match.r.page.render(root, decodeURIComponent(match.m[1] || ""));
  cleanup = typeof result === "function" ? result : null;
}

/** Move focus to the page after a navigation so keyboard and screen reader users land on it. */
function focusMain() {
  const heading = main().querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}

/** The API answered 401: leave the page for the sign-in form (once: later 401s keep what is typed). */
function showSignIn(refusal) {
  if (signingIn) return;
  signingIn = true;
  if (cleanup) cleanup();
  cleanup = null;
  for (const link of document.querySelectorAll("[data-nav]")) link.removeAttribute("aria-current");
  showSignOut();
  document.getElementById("server-state").textContent = "";
  // Reload once signed in: every module's cached answers (projects, requests) were 401s.
  signIn.render(clear(main()), { refusal, onSignedIn: () => window.location.reload() });
}

function showSignOut() {
  document.getElementById("sign-out").hidden = !storedToken() || signingIn;
}

/**
 * With a token, a plain link to an API file (model download, full output) would reach the server
 * without the header: fetch it with the token instead and hand the browser the bytes.
 */
async function openApiLink(event) {
  const link = event.target.closest?.('a[href^="/api/"]');
  if (!link || !storedToken() || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
  event.preventDefault();
  try {
    const { blob, name } = await apiFile(link.getAttribute("href"));
    const url = URL.createObjectURL(blob);
    const save = h("a", { href: url, download: link.hasAttribute("download") ? name : null, target: link.hasAttribute("download") ? null : "_blank" });
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (exc) {
    link.title = exc.message;
    link.setAttribute("aria-invalid", "true");
  }
}

async function showServer() {
  const slot = document.getElementById("server-state");
  try {
    const sys = await api("/api/v1/system");
    slot.textContent = `v${sys.version} · ${sys.device} · ${sys.database.split(":")[0]}`;
  } catch (exc) {
    if (exc.status !== 401) slot.textContent = exc.message; // a 401 shows the sign-in page instead
  }
}

document.addEventListener("click", openApiLink);
window.addEventListener(AUTH_EVENT, (event) => showSignIn(event.detail.message));
document.getElementById("sign-out").addEventListener("click", () => {
  forgetToken();
  signingIn = false;
  showSignIn("");
});
window.addEventListener("hashchange", () => {
  route();
  focusMain();
});
if (!window.location.hash) window.history.replaceState(null, "", "#/trainings");
mountSwitcher(document.getElementById("project-slot"));
route();
showServer();
