// The HQ host's studio: camera preview, publish over WHIP, stop, end the show; product
// cards (host-cards.js).

import { ApiError, api, formatCount, pathIds } from "./api.js";
import { HostCards } from "./host-cards.js";
import { SessionError, endSession, startSession, watchTransport } from "./whip.js";

const POLL_MS = 2000;
const CONNECT_MS = 15000; // answered but not connected this long: give up, say so
const [, showId] = pathIds(); // shows/{show}/host
const showPath = `/api/shows/${encodeURIComponent(showId)}`;
const whipUrl = `/whip/${encodeURIComponent(showId)}`;
const tokenKey = `lianbo:host-token:${showId}`;

const $ = (id) => document.getElementById(id);
const preview = $("preview");
const tokenInput = $("token");
const codecSelect = $("codec");

const cards = new HostCards({ showId, token: () => tokenInput.value.trim() });

const host = {
  phase: "offline", // offline | starting | live | stopping | ended
  stream: null,
  pc: null,
  location: null, // the WHIP session URL to DELETE
  token: "", // the key this session was opened with (its DELETE needs the same)
  show: null, // the last GET of the show
};

window.lianbo = {
  get pc() {
    return host.pc;
  },
  get state() {
    return host.phase;
  },
  get location() {
    return host.location;
  },
  get show() {
    return host.show;
  },
};

// -- the host key ------------------------------------------------------------------

function readToken() {
  const fromHash = new URLSearchParams(window.location.hash.slice(1)).get("token");
  if (fromHash) {
    sessionStorage.setItem(tokenKey, fromHash);
    // Keep the key out of the address bar (screen shares, screenshots); this tab remembers it.
    history.replaceState(null, "", window.location.pathname + window.location.search);
    return fromHash;
  }
  return sessionStorage.getItem(tokenKey) ?? "";
}

tokenInput.value = readToken();
tokenInput.addEventListener("change", () => {
  sessionStorage.setItem(tokenKey, tokenInput.value.trim());
});

// -- rendering ---------------------------------------------------------------------

function message(text, kind = "error") {
  const el = $("message");
  el.textContent = text ?? "";
  el.dataset.kind = kind;
  el.hidden = !text;
}

function setPhase(phase) {
  host.phase = phase;
  document.body.dataset.phase = phase;
  $("phase").textContent = phase;
  render();
}

function render() {
  const { phase } = host;
  const ended = phase === "ended" || host.show?.status === "ended";
  $("go-live").disabled = ended || phase !== "offline";
  $("stop").disabled = phase !== "live" && phase !== "starting";
  $("end-show").disabled = ended;
  $("on-air").hidden = phase !== "live";
  codecSelect.disabled = phase !== "offline";
  const state = host.pc?.connectionState ?? "not connected";
  $("connection").textContent = state;
  $("connection").dataset.state = state;
}

function renderShow(show) {
  $("show-title").textContent = show.title;
  document.title = `${show.title} · Host studio · Lianbo Live`;
  const status = $("show-status");
  status.textContent = show.status;
  status.className = `badge ${show.status === "live" ? "badge-live" : "badge-dim"}`;
  $("viewers").textContent = formatCount(show.viewers);
  renderRooms(show.rooms);
  cards.setShow(show);
  if (show.status === "ended" && host.phase !== "ended") {
    closeSession();
    setPhase("ended");
    message("This show has ended. Create a new show to go live again.", "info");
  }
  render();
}

/** The branch rooms with their viewer counts; rebuilt only when the rooms change. */
function renderRooms(rooms) {
  const list = $("rooms");
  const ids = rooms.map((room) => room.branch.id).join(" ");
  if (list.dataset.ids !== ids) {
    list.dataset.ids = ids;
    list.replaceChildren(...rooms.map(roomItem));
  }
  for (const room of rooms) {
    const count = list.querySelector(`[data-branch="${CSS.escape(room.branch.id)}"]`);
    count.textContent = `${formatCount(room.viewers)} watching`;
  }
}

function roomItem(room) {
  const li = document.createElement("li");
  li.className = "room";
  const url = new URL(room.url, window.location.origin).href;
  const name = document.createElement("a");
  name.href = url;
  name.target = "_blank";
  name.rel = "noopener";
  name.textContent = room.branch.name;
  const count = document.createElement("span");
  count.className = "badge badge-dim room-viewers";
  count.dataset.branch = room.branch.id;
  li.append(name, count, copyButton(url, `Copy the ${room.branch.name} room link`));
  return li;
}

function copyButton(text, label) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "button button-small";
  button.textContent = "Copy link";
  button.setAttribute("aria-label", label);
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied ✓";
    } catch {
      button.textContent = "Copy failed";
    }
    setTimeout(() => {
      button.textContent = "Copy link";
    }, 1500);
  });
  return button;
}

// -- show status -------------------------------------------------------------------

let pollTimer = null;
let polling = false;

/** Fetch the show now (and every POLL_MS after); a call while one is under way is dropped. */
async function poll() {
  if (polling) return;
  polling = true;
  clearTimeout(pollTimer);
  cards.refresh(); // the pinned cards and their stock, alongside
  try {
    host.show = await api(showPath, { signal: AbortSignal.timeout(5000) });
    renderShow(host.show);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      $("show-title").textContent = "No such show";
      message("This show does not exist. Check the host link HQ sent you.");
      setPhase("ended");
      return;
    }
  } finally {
    polling = false;
  }
  pollTimer = setTimeout(poll, POLL_MS);
}

// -- camera ------------------------------------------------------------------------

async function startCamera() {
  if (host.stream) return host.stream;
  try {
    host.stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true },
      video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
    });
    preview.srcObject = host.stream;
    $("camera-off").hidden = true;
    if ($("message").dataset.kind === "camera") message(null);
    return host.stream;
  } catch (error) {
    $("camera-off").hidden = false;
    const why =
      error.name === "NotAllowedError"
        ? "Allow camera and microphone access for this site, then turn the camera on."
        : error.name === "NotFoundError"
          ? "No camera or microphone was found."
          : `The camera could not start: ${error.message}`;
    message(why, "camera");
    return null;
  }
}

function fillCodecs() {
  const caps = globalThis.RTCRtpSender?.getCapabilities?.("video")?.codecs ?? [];
  const names = { "video/vp8": "VP8", "video/h264": "H.264" };
  for (const [mime, label] of Object.entries(names)) {
    if (caps.some((c) => c.mimeType.toLowerCase() === mime)) {
      codecSelect.append(new Option(label, mime));
    }
  }
}

/** Put `mime` first in the video transceiver's codec list (the server relays the first). */
function preferCodec(pc, mime) {
  if (!mime || !("setCodecPreferences" in RTCRtpTransceiver.prototype)) return;
  const caps = RTCRtpReceiver.getCapabilities("video")?.codecs ?? [];
  const preferred = caps.filter((c) => c.mimeType.toLowerCase() === mime);
  if (!preferred.length) return;
  const rest = caps.filter((c) => c.mimeType.toLowerCase() !== mime);
  for (const transceiver of pc.getTransceivers()) {
    if (transceiver.sender.track?.kind === "video") {
      transceiver.setCodecPreferences([...preferred, ...rest]);
    }
  }
}

// -- publishing --------------------------------------------------------------------

function explain(error) {
  if (!(error instanceof SessionError || error instanceof ApiError)) {
    return `Could not go live: ${error.message}`;
  }
  switch (error.status) {
    case 0:
      return "Cannot reach the server. Check your connection and try again.";
    case 401:
      return `The host key was refused: ${error.message}. Check the key HQ gave you.`;
    case 404:
      return "This show does not exist.";
    case 409:
      return "Another publisher is already live on this show. Stop it first, or wait until it drops.";
    case 410:
      return "This show has ended. Create a new show to go live again.";
    default:
      return `The server refused the stream (${error.status}): ${error.message}`;
  }
}

async function goLive() {
  const token = tokenInput.value.trim();
  if (!token) {
    message("Enter the host key first.");
    tokenInput.focus();
    return;
  }
  sessionStorage.setItem(tokenKey, token);
  if (host.phase !== "offline") return;
  const stream = await startCamera();
  if (!stream) return;
  message(null);
  setPhase("starting");
  const pc = new RTCPeerConnection({ iceServers: [] });
  host.pc = pc;
  host.token = token;
  for (const track of stream.getTracks()) {
    pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
  }
  preferCodec(pc, codecSelect.value);
  pc.addEventListener("connectionstatechange", () => onConnectionState(pc));
  try {
    host.location = await startSession(pc, whipUrl, { token });
    watchTransport(pc, (state) => lost(pc, `transport ${state}`, state === "closed"));
    setTimeout(() => {
      if (host.pc === pc && host.phase === "starting") lost(pc, "no connection");
    }, CONNECT_MS);
  } catch (error) {
    if (host.pc !== pc) return; // stopped meanwhile
    closeSession();
    setPhase(error instanceof SessionError && error.status === 410 ? "ended" : "offline");
    message(explain(error));
    return;
  }
  render();
}

function onConnectionState(pc) {
  if (host.pc !== pc) return;
  const state = pc.connectionState;
  if (state === "connected" && host.phase === "starting") {
    setPhase("live");
    poll(); // show "live" and the counts at once
  } else if (state === "failed" || state === "closed") {
    lost(pc, `connection ${state}`);
  }
  render();
}

/** The server or the network ended the session: back to offline, ready to go live again. */
function lost(pc, reason, serverClosed = false) {
  if (host.pc !== pc) return;
  console.info(`lianbo: publishing stopped (${reason})`);
  const location = host.location;
  closeSession();
  if (!serverClosed) endSession(location, { token: host.token });
  if (host.phase !== "ended") {
    setPhase("offline");
    message("The connection to the server was lost. Press “Go live” to continue the show.");
  }
  poll();
}

function closeSession() {
  const pc = host.pc;
  host.pc = null;
  host.location = null;
  if (pc) pc.close();
}

async function stop() {
  const { pc, location } = host;
  if (!pc) return;
  // This session's end is ours now: its transport closing (the server's reply) is expected.
  host.pc = null;
  host.location = null;
  setPhase("stopping");
  const status = await endSession(location, { token: host.token });
  pc.close();
  setPhase("offline");
  if (status !== null && status !== 200 && status !== 404) {
    message(`The server did not confirm the stop (HTTP ${status}).`);
  } else {
    message("Stopped. Viewers see “The show is paused” until you go live again.", "info");
  }
  poll();
}

async function endShow() {
  const token = tokenInput.value.trim();
  if (!token) {
    message("Enter the host key first.");
    tokenInput.focus();
    return;
  }
  try {
    await api(`${showPath}/end`, { method: "POST", token });
  } catch (error) {
    message(explain(error));
    return;
  }
  closeSession(); // the server has closed it already
  setPhase("ended");
  message("The show has ended. Thank you for hosting!", "info");
  poll();
}

// -- page wiring -------------------------------------------------------------------

$("controls").addEventListener("submit", (event) => {
  event.preventDefault();
  goLive();
});
$("stop").addEventListener("click", stop);
$("camera").addEventListener("click", startCamera);
$("end-show").addEventListener("click", () => $("end-dialog").showModal());
$("end-dialog").addEventListener("close", () => {
  if ($("end-dialog").returnValue === "end") endShow();
});

window.addEventListener("pagehide", () => {
  // Leaving the studio while live: end the WHIP session so the show pauses at once.
  if (host.location) endSession(host.location, { token: host.token, keepalive: true });
});

fillCodecs();
render();
if (showId) {
  poll();
  startCamera();
} else {
  message("This link is incomplete: it should look like /shows/…/host.");
}
