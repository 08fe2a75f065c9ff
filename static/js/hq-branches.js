// HQ's branches: add one, edit its name, address and coordinates, open or close it,
// and open its console.

import { ApiError, api } from "./api.js";
import { h, say } from "./dom.js";

const $ = (id) => document.getElementById(id);

/** "31.23" -> 31.23; "" -> null; undefined when it is not a number. */
function coordinate(text) {
  const trimmed = text.trim();
  if (!trimmed) return null;
  const value = Number(trimmed);
  return Number.isFinite(value) ? value : undefined;
}

function explain(error, doing) {
  if (!(error instanceof ApiError)) return `Could not ${doing}: ${error.message}`;
  return `Could not ${doing}: ${error.message}`;
}

export class HqBranches {
  constructor(merchant, onChange) {
    this.base = `/api/merchants/${encodeURIComponent(merchant)}`;
    this.onChange = onChange; // other panels list the branches too
    this.branches = [];
    $("branch-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
  }

  async load() {
    const { branches } = await api(`${this.base}/branches`);
    this.branches = branches;
    this.render();
    this.onChange(branches);
  }

  render() {
    $("branches").replaceChildren(...this.branches.map((b) => this.row(b)));
  }

  row(branch) {
    const cells = {
      name: h("input", { value: branch.name, "aria-label": `Name of ${branch.name}` }),
      address: h("input", { value: branch.address ?? "", "aria-label": `Address of ${branch.name}` }),
      place: h("input", {
        value: branch.lat == null ? "" : `${branch.lat}, ${branch.lng}`,
        "aria-label": `Coordinates of ${branch.name}`,
        placeholder: "lat, lng",
      }),
    };
    const save = h(
      "button",
      { type: "button", className: "button button-small", onclick: () => this.save(branch, cells) },
      "Save",
    );
    const toggle = h(
      "button",
      {
        type: "button",
        className: `button button-small${branch.is_open ? " button-danger" : ""}`,
        onclick: () => this.patch(branch, { is_open: !branch.is_open }),
      },
      branch.is_open ? "Close" : "Open",
    );
    const consoleLink = h(
      "a",
      { href: `/branches/${encodeURIComponent(branch.id)}/console`, className: "button button-small" },
      "Console",
    );
    return h(
      "tr",
      { dataset: { branch: branch.id }, className: branch.is_open ? "" : "branch-closed" },
      h("td", {}, cells.name),
      h("td", {}, cells.address),
      h("td", {}, cells.place),
      h("td", {}, h("span", { className: `badge ${branch.is_open ? "badge-ok" : "badge-dim"}` }, branch.is_open ? "open" : "closed")),
      h("td", {}, h("div", { className: "buttons" }, save, toggle, consoleLink)),
    );
  }

  async save(branch, cells) {
    const [latText = "", lngText = ""] = cells.place.value.split(",");
    const lat = coordinate(latText);
    const lng = coordinate(lngText);
    if (lat === undefined || lng === undefined || (lat === null) !== (lng === null)) {
      say($("branch-message"), "Coordinates are two numbers: latitude, longitude.");
      cells.place.focus();
      return;
    }
    const body = { name: cells.name.value.trim(), address: cells.address.value.trim() };
    if (lat !== null) Object.assign(body, { lat, lng });
    await this.patch(branch, body);
  }

  async patch(branch, body) {
    try {
      const updated = await api(`${this.base}/branches/${encodeURIComponent(branch.id)}`, {
        method: "PATCH",
        body,
      });
      say($("branch-message"), `Saved ${updated.name} (${updated.is_open ? "open" : "closed"}).`, "info");
      await this.load();
    } catch (error) {
      say($("branch-message"), explain(error, "save the branch"));
    }
  }

  async create() {
    const name = $("branch-name-input").value.trim();
    const address = $("branch-address-input").value.trim();
    const lat = coordinate($("branch-lat-input").value);
    const lng = coordinate($("branch-lng-input").value);
    if (!name) {
      say($("branch-message"), "Enter the branch's name.");
      $("branch-name-input").focus();
      return;
    }
    if (lat === undefined || lng === undefined || (lat === null) !== (lng === null)) {
      say($("branch-message"), "Give both latitude and longitude as numbers, or neither.");
      return;
    }
    const body = { name };
    if (address) body.address = address;
    if (lat !== null) Object.assign(body, { lat, lng });
    try {
      const branch = await api(`${this.base}/branches`, { method: "POST", body });
      for (const id of ["branch-name-input", "branch-address-input", "branch-lat-input", "branch-lng-input"]) {
        $(id).value = "";
      }
      say($("branch-message"), `Added ${branch.name}: its room is in every show now.`, "info");
      await this.load();
    } catch (error) {
      say($("branch-message"), explain(error, "add the branch"));
    }
  }
}
