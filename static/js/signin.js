// The sign-in page: email and password to POST /api/sessions, then on to `next` or home.
// The server decides where to go (it refuses `next` values that leave this site); the
// page checks once more that the answer is on this origin before navigating.

import { ApiError, api } from "./api.js";

const $ = (id) => document.getElementById(id);
const form = $("signin");
const next = new URLSearchParams(window.location.search).get("next");
let retryTimer = null;

function showError(text, input = null) {
  $("error").textContent = text ?? "";
  $("error").hidden = !text;
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
}

/** A path on this origin, or null: never navigate off-site whatever the answer says. */
function sameOrigin(path) {
  try {
    const url = new URL(path, window.location.origin);
    return url.origin === window.location.origin ? url.pathname + url.search + url.hash : null;
  } catch {
    return null;
  }
}

function chooseMerchant(merchants) {
  const list = $("merchants");
  list.replaceChildren(
    ...merchants.map((merchant, i) => {
      const label = document.createElement("label");
      label.className = "choice";
      const radio = document.createElement("input");
      radio.type = "radio";
      radio.name = "merchant";
      radio.value = merchant.id;
      radio.checked = i === 0;
      label.append(radio, document.createTextNode(merchant.name));
      return label;
    }),
  );
  $("merchant-choice").hidden = false;
}

function waitBeforeRetry(seconds) {
  const button = $("submit");
  let left = seconds;
  const tick = () => {
    if (left <= 0) {
      clearInterval(retryTimer);
      retryTimer = null;
      button.disabled = false;
      button.textContent = "Sign in";
      return;
    }
    button.textContent = `Try again in ${left} s`;
    left -= 1;
  };
  button.disabled = true;
  clearInterval(retryTimer);
  retryTimer = setInterval(tick, 1000);
  tick();
}

async function signIn() {
  const username = $("email").value.trim();
  const password = $("password").value;
  if (!username) return showError("Enter your email.", $("email"));
  if (!password) return showError("Enter your password.", $("password"));
  const body = { username, password };
  const merchant = form.querySelector("input[name=merchant]:checked");
  if (merchant) body.merchant = merchant.value;
  if (next) body.next = next;
  $("submit").disabled = true;
  try {
    const session = await api("/api/sessions", { method: "POST", body });
    window.location.assign(sameOrigin(session.next) ?? "/");
  } catch (error) {
    $("submit").disabled = false;
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 401) {
      showError("Wrong email or password.", $("password"));
    } else if (error.status === 429) {
      const seconds = error.retryAfterS ?? 30;
      showError(`Too many failed sign-ins. Wait ${seconds} seconds, then try again.`);
      waitBeforeRetry(seconds);
    } else if (error.code === "choose_merchant") {
      chooseMerchant(error.body?.merchants ?? []);
      showError("Choose the brand to sign in to, then press Sign in again.");
    } else {
      showError(error.message, error.field === "username" ? $("email") : null);
    }
  }
}

async function showSignedIn() {
  try {
    const me = await api("/api/sessions/me");
    $("continue").href = sameOrigin(next ?? me.home) ?? me.home;
    $("signed-in").hidden = false;
  } catch {
    // Not signed in (401): the form is all there is.
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  signIn();
});
showSignedIn();
