// The sign-in page, shown when the API answers 401: paste a token, kept for this browser session.

import { api } from "../api.js";
import { h } from "../dom.js";
import { forgetToken, keepToken } from "../session.js";

/** ``refusal``: the server's reason when it refused the token the page had; onSignedIn runs on success. */
export function render(root, { refusal = "", onSignedIn }) {
  const input = h("input", {
    id: "token-input",
    type: "password",
    name: "token",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "token-hint token-error",
  });
  const error = h("div", { class: "field-error", id: "token-error", role: "alert", text: refusal });
  const submit = h("button", { class: "btn btn-primary", type: "submit", text: "Sign in" });
  const onSubmit = async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) {
      error.textContent = "Paste a token first.";
      input.focus();
      return;
    }
    submit.disabled = true;
    error.textContent = "";
    keepToken(token);
    try {
      await api("/api/v1/system"); // any token may read: this only checks the token is good
      onSignedIn();
    } catch (exc) {
      forgetToken();
      error.textContent = exc.status === 401 ? `Token refused: ${exc.message}` : exc.message;
      input.setAttribute("aria-invalid", "true");
      input.select();
      submit.disabled = false;
    }
  };
  root.append(
    h("div", { class: "page-head" }, h("div", {}, h("h1", { text: "Sign in" }), h("div", { class: "sub", text: "This modelyard backend needs an API token." }))),
    h("section", { class: "panel sign-in" },
      h("form", { id: "sign-in-form", onsubmit: onSubmit, novalidate: true },
        h("div", { class: "field" },
          h("label", { for: "token-input", text: "API token" }),
          input,
          h("div", { class: "hint", id: "token-hint" },
            "Paste a token (",
            h("code", { text: "myd_…" }),
            "). An admin makes one on the server with ",
            h("code", { text: "modelyard tokens create NAME --scope train" }),
            ". It is kept for this browser tab until you sign out or close it."),
          error),
        submit)),
  );
  input.focus();
}
