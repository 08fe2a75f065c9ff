// A small WHIP (RFC 9725) / WHEP client: one non-trickle offer/answer over HTTP.
//
// The server does not trickle ICE, so the offer is sent once gathering is complete
// (or after a timeout, with whatever candidates were gathered by then).

export const GATHER_TIMEOUT_MS = 3000;

/** An HTTP refusal from a WHIP/WHEP endpoint: `status`, a readable `message`, `retryAfter` (s). */
export class SessionError extends Error {
  constructor(status, message, retryAfter = null) {
    super(message);
    this.name = "SessionError";
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

/** Resolve when ICE gathering is complete, or after `timeoutMs` (never rejects). */
export function gatheringComplete(pc, timeoutMs = GATHER_TIMEOUT_MS) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/** The readable reason in an error response: JSON {"message"} or plain text. */
export async function errorMessage(response) {
  const text = await response.text().catch(() => "");
  try {
    const body = JSON.parse(text);
    if (body && typeof body.message === "string") return body.message;
  } catch {
    // not JSON: plain text from the server or a proxy
  }
  return text.trim() || response.statusText || `HTTP ${response.status}`;
}

/**
 * Offer `pc` to a WHIP or WHEP endpoint and apply the answer.
 * Returns the session URL (absolute) to DELETE later. Throws SessionError on refusal.
 */
export async function startSession(pc, endpoint, { token = null, signal } = {}) {
  await pc.setLocalDescription(await pc.createOffer());
  await gatheringComplete(pc);
  const headers = { "Content-Type": "application/sdp" };
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(endpoint, {
      method: "POST",
      headers,
      body: pc.localDescription.sdp,
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new SessionError(0, `cannot reach the server (${error.message})`);
  }
  if (response.status !== 201) {
    const retry = Number.parseFloat(response.headers.get("Retry-After") ?? "");
    const message = await errorMessage(response);
    throw new SessionError(response.status, message, Number.isFinite(retry) ? retry : null);
  }
  const location = response.headers.get("Location");
  if (!location) throw new SessionError(response.status, "the server sent no session Location");
  const session = new URL(location, response.url).href;
  const answer = await response.text();
  if (pc.signalingState === "closed") {
    endSession(session, { token }); // given up meanwhile: free the server's side now
    throw new SessionError(0, "closed before the answer came");
  }
  await pc.setRemoteDescription({ type: "answer", sdp: answer });
  return session;
}

/**
 * Call `onClosed(state)` once when the peer's DTLS transport closes or fails. A server that
 * drops the session sends a DTLS close_notify: Chromium then reports the transport
 * "closed" at once while `connectionState` stays "connected" until ICE consent runs out.
 */
export function watchTransport(pc, onClosed) {
  const transport = pc
    .getTransceivers()
    .map((t) => t.receiver.transport ?? t.sender.transport)
    .find(Boolean);
  if (!transport) return;
  let fired = false;
  const check = () => {
    if (fired || (transport.state !== "closed" && transport.state !== "failed")) return;
    fired = true;
    transport.removeEventListener("statechange", check);
    onClosed(transport.state);
  };
  transport.addEventListener("statechange", check);
  check();
}

/** End a session (best effort). `keepalive` lets it outlive the page (pagehide). */
export async function endSession(location, { token = null, keepalive = false } = {}) {
  if (!location) return null;
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  try {
    const response = await fetch(location, { method: "DELETE", headers, keepalive });
    return response.status;
  } catch {
    return null; // the network is gone; the server's own deadlines clean up
  }
}
