// The branch room's websocket (DESIGN.md "Realtime channel"): binary msgpack frames
// {v:1, type, seq, data}. The client says hello with the last seq it saw; the server then
// sends what was missed or a fresh snapshot. A dropped socket reconnects with backoff.

import { decode, encode } from "./msgpack.js";

export const VERSION = 1;
export const HEARTBEAT_MS = 20000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30000;

export class RoomSocket {
  /**
   * `onFrame(type, data, seq)` for every frame; `onState(state)` with
   * "connecting" | "open" | "closed" (waiting to reconnect) | "stopped".
   */
  constructor(url, { onFrame, onState = () => {} }) {
    this.url = url;
    this.onFrame = onFrame;
    this.onState = onState;
    this.ws = null;
    this.lastSeq = null; // the room's sequence number this page has caught up to
    this.state = "stopped";
    this.failures = 0; // connections in a row that ended before any frame came
    this.frames = 0; // frames received on the current connection
    this.connections = 0;
    this.heartbeat = null;
    this.retryTimer = null;
  }

  get open() {
    return this.state === "open";
  }

  start() {
    if (this.state !== "stopped") return;
    this.connect();
  }

  /** Close and connect again now, keeping lastSeq (e.g. after signing in: new cookie). */
  restart() {
    this.drop();
    this.connect();
  }

  /** Connect now if waiting out a backoff (the network came back, the tab woke up). */
  wake() {
    if (this.state === "closed") this.restart();
  }

  stop() {
    this.drop();
    this.setState("stopped");
  }

  connect() {
    clearTimeout(this.retryTimer);
    const url = new URL(this.url, window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.frames = 0;
    this.connections += 1;
    this.setState("connecting");
    ws.addEventListener("open", () => {
      if (this.ws !== ws) return;
      this.send("hello", { last_seq: this.lastSeq });
      this.heartbeat = setInterval(() => this.send("heartbeat", {}), HEARTBEAT_MS);
      this.setState("open");
    });
    ws.addEventListener("message", (event) => {
      if (this.ws === ws) this.receive(event.data);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      console.info(`lianbo: room socket closed (${event.code} ${event.reason})`);
      this.drop();
      this.failures = this.frames ? 0 : this.failures + 1;
      this.setState("closed");
      this.retryTimer = setTimeout(() => this.connect(), this.backoff());
    });
    // "error" is always followed by "close": reconnecting is handled there.
  }

  backoff() {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.failures);
    return ceiling / 2 + Math.random() * (ceiling / 2); // jitter: not every shopper at once
  }

  drop() {
    clearInterval(this.heartbeat);
    clearTimeout(this.retryTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, "bye");
  }

  setState(state) {
    this.state = state;
    this.onState(state);
  }

  send(type, data) {
    if (this.ws?.readyState !== WebSocket.OPEN) return;
    this.ws.send(encode({ v: VERSION, type, data }));
  }

  receive(payload) {
    if (!(payload instanceof ArrayBuffer)) {
      console.warn("lianbo: ignoring a text frame on the room socket");
      return;
    }
    let message;
    try {
      message = decode(payload);
    } catch (error) {
      console.warn(`lianbo: ignoring an undecodable frame (${error.message})`);
      return;
    }
    const { v, type, seq, data } = message ?? {};
    if (v !== VERSION || typeof type !== "string") {
      console.warn("lianbo: ignoring a frame of an unknown version or shape", message);
      return;
    }
    this.frames += 1;
    if (typeof seq === "number") {
      // A snapshot starts over (the server may have restarted with a new count).
      this.lastSeq = type === "snapshot" ? seq : Math.max(this.lastSeq ?? 0, seq);
    }
    this.onFrame(type, data ?? {}, seq);
  }
}
