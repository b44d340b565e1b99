// The API token of this browser session: kept in sessionStorage (gone when the tab closes), sent as
// "Authorization: Bearer" by api.js and live.js. A 401 tells the page to ask for one (AUTH_EVENT).

const STORAGE_KEY = "modelyard.token";
export const AUTH_EVENT = "modelyard:unauthenticated";

let inMemory = ""; // when storage is blocked, the token lasts as long as the page

export function storedToken() {
  try {
    return sessionStorage.getItem(STORAGE_KEY) || "";
  } catch {
    return inMemory;
  }
}

export function keepToken(token) {
  inMemory = token;
  try {
    sessionStorage.setItem(STORAGE_KEY, token);
  } catch {
    // see storedToken
  }
}

export function forgetToken() {
  inMemory = "";
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // see storedToken
  }
}

/** The headers that carry the session's token ({} without one). */
export function authHeaders() {
  const token = storedToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/**
 * The server answered 401. A token it refused (revoked, expired, mistyped) is forgotten and its reason
 * passed on, so the sign-in page can say why; without a token there is nothing to explain.
 */
export function unauthenticated(sentToken, message) {
  if (sentToken && sentToken === storedToken()) forgetToken();
  window.dispatchEvent(new CustomEvent(AUTH_EVENT, { detail: { message: sentToken ? message : "" } }));
}
