// The REST client: every call returns parsed JSON or throws an ApiError whose message is plain words.
// Every call carries the session's token; a 401 also tells the page to show the sign-in form.

import { authHeaders, storedToken, unauthenticated } from "./session.js";

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }

  /** The request field the server blamed, e.g. "overrides.epochs" or "symbol", if any. */
  get field() {
    return this.details.field || (this.details.errors && this.details.errors[0]?.field) || "";
  }
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: fall through to the status text
  }
  const err = body && body.error;
  if (err && err.code === "forbidden" && err.details?.needed) {
    // Signed in, but the token's scope is too small: say which scope the action needs, in place.
    const message = `This needs a token with the "${err.details.needed}" scope (${err.message}).`;
    return new ApiError(response.status, err.code, message, err.details);
  }
  if (err && err.message) {
    return new ApiError(response.status, err.code || "error", err.message, err.details);
  }
  return new ApiError(response.status, `http_${response.status}`, `The server answered ${response.status} ${response.statusText}.`);
}

/** fetch a JSON API path; ``body`` is sent as JSON, ``form`` as multipart. */
export async function api(path, { method = "GET", body, form, signal } = {}) {
  const token = storedToken();
  const init = { method, signal, headers: { Accept: "application/json", ...authHeaders() } };
  if (form) {
    init.body = form;
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (exc) {
    if (exc.name === "AbortError") throw exc;
    throw new ApiError(0, "unreachable", "The server could not be reached. Is the backend running?");
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (response.status === 401) unauthenticated(token, error.message);
    throw error;
  }
  if (response.status === 204) return null;
  return response.json();
}

/** A file from the API (a model zip, a run's output) as a Blob and the name the server gave it. */
export async function apiFile(path) {
  const token = storedToken();
  let response;
  try {
    response = await fetch(path, { headers: authHeaders() });
  } catch {
    throw new ApiError(0, "unreachable", "The server could not be reached. Is the backend running?");
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (response.status === 401) unauthenticated(token, error.message);
    throw error;
  }
  const disposition = response.headers.get("Content-Disposition") || "";
  const name = disposition.match(/filename="?([^";]+)"?/)?.[1] || path.split("/").filter(Boolean).at(-1);
  return { blob: await response.blob(), name };
}

let openapi = null;

/** The backend's OpenAPI document, fetched once: tells the page which optional endpoints exist. */
export async function apiSchema() {
  if (!openapi) openapi = api("/openapi.json").catch(() => ({ paths: {} }));
  return openapi;
}

const requests = new Map();

/** What a training was started with (strategy, symbols, timeframes); never changes, so cached. */
export function trainingRequest(id) {
  if (!requests.has(id)) {
    requests.set(id, api(`/api/v1/operations/${encodeURIComponent(id)}/request`).catch(() => null));
  }
  return requests.get(id);
}

export const ACTIVE = new Set(["pending", "running", "cancelling"]);
export const STATUSES = ["pending", "running", "cancelling", "completed", "failed", "cancelled", "pruned"];
