// Following one operation: its Server-Sent Events read through fetch (EventSource cannot send the
// Authorization header, and a token in the URL would land in access logs), with polling as the fallback
// when the stream fails.

import { api, ACTIVE } from "./api.js";
import { authHeaders } from "./session.js";

const POLL_MS = 1500;

/** One "event: …\ndata: …" block as [kind, data]; null for a comment-only block (a heartbeat). */
function parseEvent(block) {
  let kind = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") kind = value;
    else if (field === "data") data.push(value);
  }
  return data.length ? [kind, data.join("\n")] : null;
}

/** Read an event stream until the server closes it; throws when it cannot be opened or breaks. */
async function readEvents(url, signal, onEvent) {
  const response = await fetch(url, { headers: { Accept: "text/event-stream", ...authHeaders() }, signal, cache: "no-store" });
  if (!response.ok || !response.body) throw new Error(`event stream answered ${response.status}`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replaceAll("\r\n", "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (event) onEvent(...event);
    }
  }
}

/**
 * Calls onUpdate(operationView) for every change until the operation ends (then onEnd(op)).
 * Returns a function that stops following.
 */
export function followOperation(id, onUpdate, onEnd = () => {}) {
  let stopped = false;
  let timer = null;
  const streaming = new AbortController();
  const url = `/api/v1/operations/${encodeURIComponent(id)}`;

  const deliver = (op) => {
    if (stopped) return;
    onUpdate(op);
    if (!ACTIVE.has(op.status)) {
      stop();
      onEnd(op);
    }
  };

  const poll = async () => {
    if (stopped) return;
    try {
      deliver(await api(url));
    } catch {
      // a transient failure: the next poll retries
    }
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  };

  const stop = () => {
    stopped = true;
    streaming.abort();
    clearTimeout(timer);
  };

  const handle = (kind, data) => {
    if (kind === "state" || kind === "progress" || kind === "status") deliver(JSON.parse(data));
  };
  // The server closes the stream when the operation ends; either way (ended or failed) polling takes over.
  readEvents(`${url}/events`, streaming.signal, handle)
    .catch(() => {})
    .finally(() => {
      if (!stopped) timer = setTimeout(poll, 200);
    });
  return stop;
}
