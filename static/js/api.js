// The JSON API: one fetch wrapper that turns {"error","message","field"} into ApiError.

export class ApiError extends Error {
  constructor(status, message, field = null, code = null, { body = null, retryAfterS = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.field = field;
    this.code = code; // the server's "error", e.g. "sold_out"; null when unreachable
    this.body = body; // the whole error answer, for the few that carry more (choices)
    this.retryAfterS = retryAfterS; // from Retry-After (429, 503), in seconds
  }
}

/**
 * Call the API. `body` is sent as JSON; `token` as a Bearer token; `headers` are added
 * (e.g. Idempotency-Key). Same-origin calls carry the session cookie. Returns parsed JSON.
 */
export async function api(path, { method = "GET", body, token, headers: extra, signal } = {}) {
  const headers = { Accept: "application/json", ...extra };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "Cannot reach the server. Check your connection.");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const message = (data && data.message) || text.trim() || `HTTP ${response.status}`;
    const field = (data && data.field) || null;
    const retryAfter = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
    throw new ApiError(response.status, message, field, (data && data.error) || null, {
      body: data,
      retryAfterS: Number.isFinite(retryAfter) ? retryAfter : null,
    });
  }
  return data;
}

/** Path segments after a fixed prefix, e.g. /shows/{show}/rooms/{branch}. */
export function pathIds() {
  return window.location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
}

export function formatCount(n) {
  return new Intl.NumberFormat("en", { notation: "compact" }).format(n ?? 0);
}
