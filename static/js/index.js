// The start page: create a demo brand with stores and a show, then link to its pages.

import { ApiError, api } from "./api.js";

const BRANCHES_MAX = 20;
const $ = (id) => document.getElementById(id);
const form = $("demo");

// Which input a refused field belongs to, by the step that was refused.
const INPUTS = { merchant: "merchant", branch: "branches", show: "title" };

function showError(text, input = null) {
  $("error").textContent = text ?? "";
  $("error").hidden = !text;
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const target = input && $(input);
  if (target) {
    target.setAttribute("aria-invalid", "true");
    target.focus();
  }
}

function absolute(path) {
  return new URL(path, window.location.origin).href;
}

function copyButton(text, label) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "button button-small";
  button.textContent = "Copy link";
  button.setAttribute("aria-label", label);
  button.addEventListener("click", () => copy(button, text));
  return button;
}

async function copy(button, text) {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied ✓";
  } catch {
    button.textContent = "Copy failed";
  }
  setTimeout(() => {
    button.textContent = "Copy link";
  }, 1500);
}

async function createDemo() {
  const merchantName = $("merchant").value.trim();
  const title = $("title").value.trim();
  // "Name" or "Name | address", one store per line.
  const branches = $("branches")
    .value.split("\n")
    .map((line) => line.split("|").map((part) => part.trim()))
    .filter(([name]) => name)
    .map(([name, address]) => (address ? { name, address } : { name }));
  if (!merchantName) return showError("Enter a brand name.", "merchant");
  if (!title) return showError("Enter a show title.", "title");
  if (!branches.length) return showError("Enter at least one store.", "branches");
  if (branches.length > BRANCHES_MAX) {
    return showError(`Enter at most ${BRANCHES_MAX} stores.`, "branches");
  }

  const progress = $("progress");
  let step = "merchant";
  const created = await (async () => {
    progress.textContent = "Creating the brand…";
    const { merchant, operator_token: token } = await api("/api/merchants", {
      method: "POST",
      body: { name: merchantName },
    });
    const base = `/api/merchants/${encodeURIComponent(merchant.id)}`;
    step = "branch";
    for (const [i, branch] of branches.entries()) {
      progress.textContent = `Opening store ${i + 1} of ${branches.length}: ${branch.name}…`;
      await api(`${base}/branches`, { method: "POST", body: branch, token });
    }
    step = "show";
    progress.textContent = "Scheduling the show…";
    const show = await api(`${base}/shows`, { method: "POST", body: { title }, token });
    return { operatorToken: token, show };
  })().catch((error) => {
    error.input = error.field ? INPUTS[step] : null;
    throw error;
  });
  progress.textContent = "";
  showResult(created);
}

function showResult({ operatorToken, show }) {
  const hostUrl = `${absolute(show.host_url)}#token=${encodeURIComponent(show.host_token)}`;
  $("host-link").href = hostUrl;
  $("copy-host").onclick = () => copy($("copy-host"), hostUrl);
  const items = show.rooms.map((room) => {
    const li = document.createElement("li");
    li.className = "room";
    const link = document.createElement("a");
    link.href = absolute(room.url);
    link.target = "_blank";
    link.rel = "noopener";
    link.textContent = room.branch.name;
    link.className = "room-link";
    const url = document.createElement("code");
    url.className = "room-url";
    url.textContent = absolute(room.url);
    li.append(link, copyButton(absolute(room.url), `Copy the ${room.branch.name} room link`), url);
    return li;
  });
  $("room-links").replaceChildren(...items);
  $("operator-token").textContent = operatorToken;
  $("host-token").textContent = show.host_token;
  $("whip-url").textContent = absolute(show.whip_url);
  $("result").hidden = false;
  $("result").scrollIntoView({ behavior: "smooth", block: "start" });
  $("host-link").focus({ preventScroll: true });
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  showError(null);
  const button = $("create");
  button.disabled = true;
  try {
    await createDemo();
  } catch (error) {
    $("progress").textContent = "";
    const text =
      error instanceof ApiError ? error.message : `Something went wrong: ${error.message}`;
    showError(text, error.input ?? null);
  } finally {
    button.disabled = false;
  }
});
