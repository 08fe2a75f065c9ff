// The shopper's branch-room page: the show's video over WHEP; status, viewers, live product
// cards and the shopper's own orders over the room's websocket; buying over HTTP.
//
// One WHEP session at a time. The server keeps it while the host pauses and comes back
// (the video resumes by itself); if the server drops it (failed/closed, e.g. the host
// came back with another codec) the page starts a new session without reloading.
//
// The socket carries the show status; while it is down, the page polls the room over
// HTTP every 2 s instead (and a 2 s tick checks that the video still advances).

import { ApiError, api, formatCount, pathIds } from "./api.js";
import { CardBoard } from "./cards.js";
import { Shop } from "./shop.js";
import { RoomSocket } from "./socket.js";
import { SessionError, endSession, startSession, watchTransport } from "./whip.js";

const POLL_MS = 2000;
const RETRY_MS = 2000; // after a dropped session or a failed offer
const ERROR_RETRY_MS = 10000; // after a refusal that waiting may fix (codec, bad offer)
const DISCONNECTED_GRACE_MS = 6000; // "disconnected" this long counts as lost
const STALL_MS = 10000; // live and connected but no new video frame this long: reconnect
const CONNECT_MS = 15000; // answered but not connected this long: start over

const OVERLAY = {
  scheduled: "The show starts soon",
  paused: "The show is paused",
  ended: "The show has ended",
};

const [, showId, , branchId] = pathIds(); // shows/{show}/rooms/{branch}
const roomPath = `/api/shows/${encodeURIComponent(showId)}/rooms/${encodeURIComponent(branchId)}`;
const socketPath = `/ws/shows/${encodeURIComponent(showId)}/rooms/${encodeURIComponent(branchId)}`;

const $ = (id) => document.getElementById(id);
const video = $("video");
const overlay = $("overlay");
const overlayText = $("overlay-text");

const room = {
  status: null, // scheduled | live | paused | ended, from the poll
  data: null, // the last GET of the room
  session: "idle", // idle | connecting | connected | ended
  pc: null,
  location: null, // the WHEP session URL to DELETE
  sessions: 0, // WHEP sessions started (a reconnect without reload increases it)
  nextAttemptAt: 0,
  liveSince: 0,
  progress: { frames: -1, at: 0 }, // last seen framesDecoded and when it changed
  disconnectedTimer: null,
  connectTimer: null,
  retryTimer: null,
  pollTimer: null,
  missing: false, // the room does not exist: stop
  socketError: null, // the last "error" frame's reason (a bad frame this page sent)
};

const socket = new RoomSocket(socketPath, { onFrame, onState: onSocketState });
const board = new CardBoard({
  list: $("cards"),
  spotlight: $("spotlight"),
  onBuy: (card) => shop.open(board.get(card.id) ?? card),
  onChange: (card) => shop.refresh(card),
});
const shop = new Shop({
  showId,
  branchId,
  room: () => room.data,
  board,
  onSignedIn: () => socket.restart(), // the new socket carries the session cookie
});

window.lianbo = {
  get pc() {
    return room.pc;
  },
  get state() {
    return room.status;
  },
  get session() {
    return room.session;
  },
  get location() {
    return room.location;
  },
  get sessions() {
    return room.sessions;
  },
  get socket() {
    return socket.state;
  },
  get seq() {
    return socket.lastSeq;
  },
  get sockets() {
    return socket.connections;
  },
  get socketError() {
    return room.socketError;
  },
  get shopper() {
    return shop.me?.shopper ?? null;
  },
};

// -- rendering ---------------------------------------------------------------------

function notice(text) {
  const el = $("notice");
  el.textContent = text ?? "";
  el.hidden = !text;
}

function renderStatus() {
  const status = room.status;
  const text = OVERLAY[status];
  overlay.hidden = !text;
  overlayText.textContent = text ?? "";
  overlay.dataset.status = status ?? "";
  document.body.dataset.status = status ?? "loading";
  $("live-badge").hidden = status !== "live";
  renderConnecting();
}

function renderConnecting() {
  const playing = room.session === "connected" && video.readyState >= 2;
  $("connecting").hidden = !(room.status === "live" && !playing);
}

function renderRoom(data) {
  const { show, branch } = data;
  $("branch-name").textContent = branch.name;
  $("show-title").textContent = show.title;
  $("branch-address").textContent = branch.address || "";
  $("branch-address").hidden = !branch.address;
  if (!socket.open) renderViewers(data.viewers); // the socket's count is fresher
  document.title = `${branch.name} · ${show.title} · Lianbo Live`;
}

function renderViewers(count) {
  $("viewer-count").textContent = formatCount(count);
  $("viewers").setAttribute("aria-label", `${count} watching in this store`);
}

function renderBranchOpen(isOpen) {
  $("store-closed").hidden = isOpen !== false;
}

// -- the room socket ---------------------------------------------------------------

function onFrame(type, data) {
  switch (type) {
    case "snapshot": {
      const { show, branch } = data;
      $("branch-name").textContent = branch.name;
      $("show-title").textContent = show.title;
      renderBranchOpen(branch.is_open);
      setStatus(show.status);
      board.reset(data.cards ?? []);
      renderViewers(Math.max(1, data.viewers ?? 0)); // this page is one of them
      ensureSession();
      break;
    }
    case "card.shown":
      board.upsert(data, { spotlight: true });
      break;
    case "card.updated":
      board.upsert(data);
      break;
    case "card.hidden":
      board.remove(data.id);
      break;
    case "stock":
      board.stock(data);
      break;
    case "show.status":
      setStatus(data.status);
      ensureSession();
      break;
    case "viewers":
      renderViewers(Math.max(1, data.count ?? 0));
      break;
    case "order":
      shop.onOrder(data);
      break;
    case "error":
      room.socketError = data.reason ?? "unknown";
      console.warn(`lianbo: the room socket refused a message: ${room.socketError}`);
      break;
    default:
      break; // a newer server's frame: nothing to do with it here
  }
}

function onSocketState(state) {
  document.body.dataset.socket = state;
  if (state === "closed") poll(); // fall back to HTTP until the socket is back
  // Back after a drop: "order" frames missed meanwhile are not replayed, so read them.
  if (state === "open" && socket.connections > 1 && shop.me) shop.loadOrders();
}

/** Once the room is known to exist: the socket, and who the shopper is. */
function startRealtime() {
  if (socket.state !== "stopped") return;
  socket.start();
  shop.init().catch((error) => console.warn("lianbo: could not load the shopper", error));
}

// -- polling -----------------------------------------------------------------------

let polling = false;

/**
 * Every POLL_MS: fetch the room over HTTP (the first time, and whenever the socket is
 * down), and check the video advances. A call while one is under way is dropped.
 */
async function poll() {
  if (polling) return;
  polling = true;
  clearTimeout(room.pollTimer);
  try {
    if (!room.data || !socket.open) {
      const data = await api(roomPath, { signal: AbortSignal.timeout(5000) });
      room.data = data;
      notice(null);
      if (!socket.open) setStatus(data.show.status); // else the socket's status is fresher
      renderRoom(data);
      startRealtime();
    }
    await checkProgress();
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      room.missing = true;
      notice("This store room does not exist. Check the link you were given.");
      setStatus(null);
      socket.stop();
      return; // nothing to wait for
    }
    notice("Reconnecting to the store…");
  } finally {
    polling = false;
  }
  if (room.status !== "ended") room.pollTimer = setTimeout(poll, POLL_MS);
  ensureSession();
}

function setStatus(status) {
  if (status === "live" && room.status !== "live") room.liveSince = performance.now();
  const was = room.status;
  room.status = status;
  renderStatus();
  if (status === "ended") stopSession();
  if ((was === "ended") !== (status === "ended")) {
    board.setContext({ showEnded: status === "ended" }); // no buying after the show
  }
}

// -- the WHEP session --------------------------------------------------------------

function ensureSession() {
  if (room.missing || room.session !== "idle" || !room.data) return;
  // "scheduled": the endpoint would answer 503 until the host's first publish.
  if (room.status !== "live" && room.status !== "paused") return;
  const wait = room.nextAttemptAt - performance.now();
  if (wait > 0) {
    clearTimeout(room.retryTimer);
    room.retryTimer = setTimeout(ensureSession, wait);
    return;
  }
  connect(room.data.whep_url);
}

async function connect(endpoint) {
  room.session = "connecting";
  room.sessions += 1;
  const pc = new RTCPeerConnection({ iceServers: [] });
  room.pc = pc;
  room.progress = { frames: -1, at: performance.now() };
  const stream = new MediaStream();
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addTransceiver("audio", { direction: "recvonly" });
  pc.addEventListener("track", (event) => {
    stream.addTrack(event.track);
    // Media stopping or coming back (the host paused or resumed): ask for the status now.
    event.track.addEventListener("mute", poll);
    event.track.addEventListener("unmute", poll);
    if (video.srcObject !== stream) video.srcObject = stream;
    play();
  });
  pc.addEventListener("connectionstatechange", () => onConnectionState(pc));
  try {
    const location = await startSession(pc, endpoint);
    if (room.pc !== pc) {
      endSession(location); // dropped meanwhile (ended, pagehide)
      return;
    }
    room.location = location;
    notice(null);
    watchTransport(pc, (state) => {
      // "closed": the server ended the session (nothing to DELETE); "failed": the network.
      if (room.pc === pc) reconnect(`transport ${state}`, { serverClosed: state === "closed" });
    });
    room.connectTimer = setTimeout(() => {
      if (room.pc === pc && room.session === "connecting") reconnect("no connection");
    }, CONNECT_MS);
  } catch (error) {
    if (room.pc !== pc) return;
    dropSession();
    onRefused(error);
  }
}

function onRefused(error) {
  const status = error instanceof SessionError ? error.status : 0;
  if (status === 410) {
    setStatus("ended");
    return;
  }
  if (status === 503) {
    // Not started yet (or no longer publishing anything): try again when told.
    retryIn((error.retryAfter ?? RETRY_MS / 1000) * 1000);
    return;
  }
  if (status === 404) {
    room.missing = true;
    notice("This store room does not exist. Check the link you were given.");
    return;
  }
  if (status === 406 || status === 400 || status === 415) {
    notice(`This browser cannot play the show: ${error.message}`);
    retryIn(ERROR_RETRY_MS);
    return;
  }
  notice("Connecting to the show…");
  retryIn(RETRY_MS);
}

function retryIn(ms) {
  room.nextAttemptAt = performance.now() + ms;
  ensureSession();
}

function onConnectionState(pc) {
  if (room.pc !== pc) return;
  const state = pc.connectionState;
  document.body.dataset.connection = state;
  clearTimeout(room.disconnectedTimer);
  if (state === "connected") {
    clearTimeout(room.connectTimer);
    room.session = "connected";
    room.progress = { frames: -1, at: performance.now() };
    poll(); // the viewer count now includes this shopper
  } else if (state === "failed" || state === "closed") {
    reconnect(`connection ${state}`);
  } else if (state === "disconnected") {
    room.disconnectedTimer = setTimeout(() => {
      if (room.pc === pc && pc.connectionState === "disconnected") reconnect("disconnected");
    }, DISCONNECTED_GRACE_MS);
  }
  renderConnecting();
}

/** Drop the current session and start a new one (same page, same <video>). */
function reconnect(reason, { serverClosed = false } = {}) {
  console.info(`lianbo: reconnecting (${reason})`);
  const location = room.location;
  dropSession();
  if (!serverClosed) endSession(location); // it may be gone on the server already: harmless
  retryIn(RETRY_MS / 4);
}

function dropSession() {
  clearTimeout(room.disconnectedTimer);
  clearTimeout(room.connectTimer);
  const pc = room.pc;
  room.pc = null;
  room.location = null;
  if (room.session !== "ended") room.session = "idle";
  if (pc) pc.close();
  renderConnecting();
}

/** The show has ended: the server has closed every session; stop polling too. */
function stopSession() {
  clearTimeout(room.retryTimer);
  clearTimeout(room.pollTimer);
  room.session = "ended";
  dropSession();
  video.srcObject = null;
}

/** Live and connected, but no new video frame for a while: the session is stuck. */
async function checkProgress() {
  const pc = room.pc;
  if (!pc || room.session !== "connected") return;
  const stats = await pc.getStats();
  let frames = null;
  stats.forEach((report) => {
    if (report.type === "inbound-rtp" && report.kind === "video") frames = report.framesDecoded;
  });
  const receivesVideo = pc
    .getTransceivers()
    .some((t) => t.receiver.track.kind === "video" && t.currentDirection === "recvonly");
  if (frames === null || !receivesVideo || room.pc !== pc) return;
  const now = performance.now();
  if (frames !== room.progress.frames) {
    room.progress = { frames, at: now };
    return;
  }
  const since = Math.max(room.progress.at, room.liveSince);
  if (room.status === "live" && now - since > STALL_MS) reconnect("no video");
}

function play() {
  video.play().catch(() => {
    $("play").hidden = false; // autoplay refused: let the shopper start it
  });
}

// -- page wiring -------------------------------------------------------------------

$("unmute").addEventListener("click", () => {
  video.muted = !video.muted;
  $("unmute").textContent = video.muted ? "🔇 Tap for sound" : "🔊 Sound on";
  $("unmute").setAttribute("aria-pressed", String(!video.muted));
  play();
});

$("play").addEventListener("click", () => {
  $("play").hidden = true;
  play();
});

for (const event of ["playing", "loadeddata", "waiting", "emptied"]) {
  video.addEventListener(event, renderConnecting);
}

// Fit the stage to the host's picture (portrait phone or landscape camera), no cropping.
video.addEventListener("resize", () => {
  if (video.videoWidth && video.videoHeight) {
    video.parentElement.style.aspectRatio = `${video.videoWidth} / ${video.videoHeight}`;
  }
});

window.addEventListener("pagehide", () => {
  const location = room.location;
  clearTimeout(room.pollTimer);
  clearTimeout(room.retryTimer);
  if (room.session !== "ended") room.session = "idle";
  dropSession();
  endSession(location, { keepalive: true });
  socket.stop();
});

window.addEventListener("pageshow", (event) => {
  if (!event.persisted) return;
  // Back from the back/forward cache: start over (the socket resumes from its last seq).
  if (room.data && !room.missing) socket.start();
  poll();
});

window.addEventListener("online", () => socket.wake());

if (!showId || !branchId) {
  notice("This link is incomplete: it should look like /shows/…/rooms/….");
} else {
  poll();
}
