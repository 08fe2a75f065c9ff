// Who is signed in, and signing out: shared by the branch and HQ consoles.

import { api } from "./api.js";

/** The signed-in actor ({role, merchant, branch}), or null when the session is gone. */
export async function whoAmI() {
  try {
    return await api("/api/sessions/me");
  } catch {
    return null;
  }
}

/** Send the person to sign in again, coming back to this page. */
export function toSignIn() {
  const next = window.location.pathname + window.location.search;
  window.location.assign(`/signin?next=${encodeURIComponent(next)}`);
}

export function wireSignOut(button) {
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await api("/api/sessions/me", { method: "DELETE" });
    } finally {
      window.location.assign("/signin");
    }
  });
}
