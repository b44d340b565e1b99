// Following one operation: Server-Sent Events, with polling as the fallback when the stream fails.

import { api, ACTIVE } from "./api.js";

const POLL_MS = 1500;

/**
 * Calls onUpdate(operationView) for every change until the operation ends (then onEnd(op)).
 * Returns a function that stops following.
 */
export function followOperation(id, onUpdate, onEnd = () => {}) {
  let stopped = false;
  let source = null;
  let timer = null;
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
    if (source) source.close();
    clearTimeout(timer);
  };

  if (typeof EventSource === "function") {
    source = new EventSource(`${url}/events`);
    const handle = (event) => deliver(JSON.parse(event.data));
    for (const kind of ["state", "progress", "status"]) source.addEventListener(kind, handle);
    source.onerror = () => {
      // The server closes the stream when the operation ends; either way polling takes over.
      source.close();
      source = null;
      if (!stopped) timer = setTimeout(poll, 200);
    };
  } else {
    poll();
  }
  return stop;
}
