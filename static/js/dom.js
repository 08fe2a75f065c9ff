// Building elements: h("li", {className: "order", dataset: {id}}, "text", child, ...).
// Text is always set as text (never parsed as HTML): ids and names come from the server.

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key in el && key !== "list") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/** A button that copies `text`, saying so for a moment. */
export function copyButton(text, label, caption = "Copy link") {
  const button = h("button", {
    type: "button",
    className: "button button-small",
    "aria-label": label,
  });
  button.textContent = caption;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text());
      button.textContent = "Copied ✓";
    } catch {
      button.textContent = "Copy failed";
    }
    setTimeout(() => {
      button.textContent = caption;
    }, 1500);
  });
  return button;
}

/** Show `text` in a notice element (role=alert); kind "info" or "error"; null hides it. */
export function say(el, text, kind = "error") {
  el.textContent = text ?? "";
  el.dataset.kind = kind;
  el.hidden = !text;
}
