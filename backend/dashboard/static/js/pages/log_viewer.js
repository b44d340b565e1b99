// A streaming log viewer: polls /logs from the last offset; follows the tail unless the user scrolled up.

import { api } from "../api.js";
import { h } from "../dom.js";

const POLL_MS = 1000;
const BOTTOM_SLACK_PX = 8;

export function logViewer(operationId) {
  const box = h("pre", { class: "log", id: "log-view", tabindex: "0", "aria-label": "Training log" });
  const state = h("span", { id: "log-follow", text: "following" });
  const jump = h("button", { type: "button", class: "btn btn-small", hidden: true, text: "Jump to latest" });
  const error = h("div", { class: "action-error", role: "alert" });
  let offset = 0;
  let follow = true;
  let timer = null;
  let active = true;
  let stopped = false;

  const atBottom = () => box.scrollHeight - box.scrollTop - box.clientHeight <= BOTTOM_SLACK_PX;
  const setFollow = (on) => {
    follow = on;
    state.textContent = on ? "following" : "paused — scrolled up";
    jump.hidden = on;
  };
  box.addEventListener("scroll", () => setFollow(atBottom()));
  jump.addEventListener("click", () => {
    box.scrollTop = box.scrollHeight;
    setFollow(true);
  });

  const fetchMore = async () => {
    try {
      const page = await api(`/api/v1/operations/${encodeURIComponent(operationId)}/logs?offset=${offset}&limit=1000`);
      if (stopped) return;
      error.textContent = "";
      if (page.lines.length) {
        const keepFollowing = follow;
        for (const line of page.lines) {
          box.append(h("div", { class: `line lvl-${line.level}` }, h("span", { class: "at", text: line.at.slice(11, 19) }), `${line.level.padEnd(7)} ${line.message}`));
        }
        offset = page.next_offset;
        if (keepFollowing) box.scrollTop = box.scrollHeight;
        if (page.lines.length === 1000) return fetchMore();
      }
    } catch (exc) {
      error.textContent = `Could not read the log: ${exc.message}`;
    }
  };

  const loop = async () => {
    await fetchMore();
    if (!stopped && active) timer = setTimeout(loop, POLL_MS);
  };

  const panel = h(
    "section",
    { class: "panel" },
    h("h2", {}, "Log", h("span", { class: "log-state" }, state, jump)),
    error,
    box,
  );
  loop();
  return {
    panel,
    /** The operation ended: read what is left once, then stop polling. */
    finish() {
      active = false;
      clearTimeout(timer);
      setTimeout(fetchMore, 300);
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
