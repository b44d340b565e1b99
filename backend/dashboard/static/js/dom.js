// Building DOM nodes by hand: h("tag", {props}, ...children). Text is always set as text, never HTML.

export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "style" && typeof value === "object") {
      for (const [prop, v] of Object.entries(value)) {
        if (prop.startsWith("--")) node.style.setProperty(prop, v);
        else node.style[prop] = v;
      }
    }
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

let ids = 0;
export function uid(prefix = "id") {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** A labelled form field with an error slot wired through aria-describedby. */
export function field(labelText, control, hint = "") {
  const id = control.id || uid("f");
  control.id = id;
  const error = h("div", { class: "field-error", id: `${id}-error`, role: "alert" });
  const hintNode = hint ? h("div", { class: "hint", id: `${id}-hint`, text: hint }) : null;
  control.setAttribute("aria-describedby", [hintNode && hintNode.id, error.id].filter(Boolean).join(" "));
  const wrap = h("div", { class: "field" }, h("label", { for: id, text: labelText }), control, hintNode, error);
  return { wrap, control, error, setError: (msg) => setFieldError(control, error, msg) };
}

export function setFieldError(control, errorNode, message) {
  errorNode.textContent = message || "";
  if (message) control.setAttribute("aria-invalid", "true");
  else control.removeAttribute("aria-invalid");
}

const dialog = () => document.getElementById("confirm-dialog");

/** A modal yes/no question; resolves true when the user confirms. Esc or "Keep it" resolve false. */
export function confirmAction(title, text, okLabel) {
  const box = dialog();
  box.querySelector("#confirm-title").textContent = title;
  box.querySelector("#confirm-text").textContent = text;
  box.querySelector("#confirm-ok").textContent = okLabel;
  box.returnValue = "";
  return new Promise((resolve) => {
    box.addEventListener("close", () => resolve(box.returnValue === "ok"), { once: true });
    box.showModal();
    box.querySelector("#confirm-cancel").focus();
  });
}

export function pageHead(title, sub, ...actions) {
  return h(
    "div",
    { class: "page-head" },
    h("div", {}, h("h1", { text: title }), sub ? h("div", { class: "sub" }, sub) : null),
    h("div", { class: "toolbar" }, ...actions),
  );
}
