// HQ's shows: create one (its host key is shown once: the host studio link and the WHIP
// URL + bearer token for OBS), and list them with their host links and rooms.

import { ApiError, api } from "./api.js";
import { copyButton, h, say } from "./dom.js";

const $ = (id) => document.getElementById(id);
const absolute = (path) => new URL(path, window.location.origin).href;

export class HqShows {
  constructor(merchant) {
    this.base = `/api/merchants/${encodeURIComponent(merchant)}`;
    $("show-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
  }

  async load() {
    const { shows } = await api(`${this.base}/shows`);
    const items = shows.map((show) =>
      h(
        "li",
        { className: "show-item", dataset: { show: show.id, status: show.status } },
        h(
          "p",
          { className: "show-line" },
          h("strong", {}, show.title),
          h(
            "span",
            { className: `badge ${show.status === "live" ? "badge-live" : "badge-dim"}` },
            show.status,
          ),
        ),
        h(
          "p",
          { className: "muted" },
          "Host studio: ",
          h("a", { href: show.host_url, target: "_blank", rel: "noopener" }, absolute(show.host_url)),
        ),
        h("p", { className: "muted" }, "WHIP: ", h("code", {}, absolute(show.whip_url))),
        h(
          "p",
          { className: "muted" },
          "Rooms: ",
          ...show.rooms.flatMap((room, i) => [
            i ? " · " : "",
            h("a", { href: room.url, target: "_blank", rel: "noopener" }, room.name),
          ]),
        ),
      ),
    );
    if (!items.length) items.push(h("li", { className: "muted" }, "No shows yet."));
    $("shows").replaceChildren(...items);
  }

  async create() {
    const input = $("show-title-input");
    const title = input.value.trim();
    if (!title) {
      say($("show-message"), "Enter the show's title.");
      input.focus();
      return;
    }
    try {
      const show = await api(`${this.base}/shows`, { method: "POST", body: { title } });
      input.value = "";
      say($("show-message"), `Created “${show.title}”.`, "info");
      this.reveal(show);
      await this.load();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      say($("show-message"), `Could not create the show: ${error.message}`);
    }
  }

  reveal(show) {
    const hostUrl = `${absolute(show.host_url)}#token=${encodeURIComponent(show.host_token)}`;
    $("secret-host-link").href = hostUrl;
    $("secret-whip-url").textContent = absolute(show.whip_url);
    $("secret-token").textContent = show.host_token;
    for (const [id, text, label] of [
      ["secret-host-link", hostUrl, "Copy the host studio link"],
      ["secret-whip-url", absolute(show.whip_url), "Copy the WHIP URL"],
      ["secret-token", show.host_token, "Copy the host key"],
    ]) {
      const dd = $(id).parentElement;
      dd.querySelector("button")?.remove();
      dd.append(copyButton(() => text, label, "Copy"));
    }
    $("show-secret").hidden = false;
  }
}
