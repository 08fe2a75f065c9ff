// The host's product cards: pin a product from the catalog (with an optional flash price,
// end time and per-shopper limit), see what is pinned with the stock left across all
// stores and its orders in the last minute, change a card's price, unpin it. Writes carry
// the host key as a Bearer token; the pace does too when there is one (else the cookie).

import { ApiError, api } from "./api.js";
import { formatCountdown, formatYuan, parseYuan, yuanInput } from "./money.js";

const MINUTES_MAX = 1440;
const LIMIT_MAX = 1_000_000;
const TICK_MS = 1000;

const $ = (id) => document.getElementById(id);

function explain(error, doing) {
  if (!(error instanceof ApiError)) return `Could not ${doing}: ${error.message}`;
  switch (error.status) {
    case 0:
      return "Cannot reach the server. Check your connection and try again.";
    case 401:
      return `The host key was refused: ${error.message}. Check the key HQ gave you.`;
    case 404:
      return "That card is no longer pinned.";
    case 410:
      return "This show has ended: no more cards can be pinned.";
    default:
      return `Could not ${doing}: ${error.message}`;
  }
}

export class HostCards {
  /** `token()`: the host key from the studio's form (empty when not entered). */
  constructor({ showId, token }) {
    this.showPath = `/api/shows/${encodeURIComponent(showId)}`;
    this.token = token;
    this.merchant = null;
    this.ended = false;
    this.cards = []; // the last GET of the pinned cards
    this.pace = new Map(); // card id -> {orders, units} in the last minute
    this.items = new Map(); // card id -> <li>
    this.refreshing = false;
    this.pinning = false;
    this.ticker = null;
    $("pin-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.pin();
    });
  }

  /** The show as last polled: its merchant's catalog, and whether pinning is over. */
  setShow(show) {
    this.ended = show.status === "ended";
    $("pin").disabled = this.ended || this.pinning;
    if (this.merchant !== show.merchant) {
      this.merchant = show.merchant;
      this.loadCatalog();
    }
  }

  message(text, kind = "error") {
    const el = $("pin-message");
    el.textContent = text ?? "";
    el.dataset.kind = kind;
    el.hidden = !text;
  }

  requireToken() {
    const token = this.token();
    if (!token) {
      this.message("Enter the host key first (in the studio's form).");
      $("token").focus();
    }
    return token;
  }

  // -- the catalog -------------------------------------------------------------------

  async loadCatalog() {
    const select = $("pin-sku");
    try {
      const { skus } = await api(`/api/merchants/${encodeURIComponent(this.merchant)}/catalog`);
      const chosen = select.value;
      const options = skus.map((sku) => {
        const live = sku.offer && sku.offer.price !== sku.price;
        const label = `${sku.name} · ${formatYuan(sku.price)}${
          live ? ` (now ${formatYuan(sku.offer.price)})` : ""
        }`;
        const option = new Option(label, sku.id);
        option.dataset.price = String(sku.price);
        return option;
      });
      const prompt = new Option(skus.length ? "Choose a product…" : "No products yet", "");
      select.replaceChildren(prompt, ...options);
      if (skus.some((sku) => sku.id === chosen)) select.value = chosen;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      select.replaceChildren(new Option("The catalog could not load", ""));
      this.message(explain(error, "load the catalog"));
    }
  }

  /** The pin form's values, or a message saying what to fix. */
  pinBody() {
    const sku = $("pin-sku").value;
    if (!sku) return { problem: "Choose a product to pin.", input: "pin-sku" };
    const body = { sku };
    const title = $("pin-title").value.trim();
    if (title) body.title = title;
    const priceText = $("pin-price").value.trim();
    if (priceText) {
      const price = parseYuan(priceText);
      if (price === null)
        return { problem: "Enter the flash price in yuan, like 9.90.", input: "pin-price" };
      body.price = price;
    }
    const minutesText = $("pin-minutes").value.trim();
    if (minutesText) {
      const minutes = Number(minutesText);
      if (!Number.isInteger(minutes) || minutes < 1 || minutes > MINUTES_MAX) {
        return { problem: `The sale ends in 1 to ${MINUTES_MAX} minutes.`, input: "pin-minutes" };
      }
      body.ends_at_ms = Date.now() + minutes * 60_000;
    }
    const limitText = $("pin-limit").value.trim();
    if (limitText) {
      const limit = Number(limitText);
      if (!Number.isInteger(limit) || limit < 1 || limit > LIMIT_MAX) {
        return {
          problem: "The limit per shopper is a whole number, 1 or more.",
          input: "pin-limit",
        };
      }
      body.limit_per_shopper = limit;
    }
    return { body };
  }

  async pin() {
    const { body, problem, input } = this.pinBody();
    if (problem) {
      this.message(problem);
      $(input).focus();
      return;
    }
    const token = this.requireToken();
    if (!token) return;
    const button = $("pin");
    button.disabled = true;
    this.pinning = true;
    try {
      const card = await api(`${this.showPath}/cards`, { method: "POST", body, token });
      this.message(`Pinned “${card.title}” in every store's room.`, "info");
      for (const id of ["pin-title", "pin-price", "pin-minutes", "pin-limit"]) $(id).value = "";
      this.refresh();
      this.loadCatalog();
    } catch (error) {
      this.message(explain(error, "pin the card"));
    } finally {
      this.pinning = false;
      button.disabled = this.ended;
    }
  }

  // -- pinned cards ------------------------------------------------------------------

  /** GET the pinned cards (with stock left across stores); a call under way is enough. */
  async refresh() {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      const { cards } = await api(`${this.showPath}/cards`, { signal: AbortSignal.timeout(5000) });
      this.cards = cards;
      await this.refreshPace();
      this.render();
    } catch (error) {
      if (!(error instanceof ApiError) && error.name !== "TimeoutError") throw error;
      // the studio's own poll reports a lost server; the next refresh catches up
    } finally {
      this.refreshing = false;
    }
  }

  /** Orders per minute for each pinned card (all branches): for the host key, or a
   * signed-in host's or HQ operator's session cookie. */
  async refreshPace() {
    if (!this.cards.length) return;
    try {
      const { cards } = await api(`${this.showPath}/pace`, {
        token: this.token(),
        signal: AbortSignal.timeout(5000),
      });
      this.pace = new Map(cards.map((c) => [c.card, c]));
    } catch (error) {
      if (!(error instanceof ApiError) && error.name !== "TimeoutError") throw error;
      this.pace = new Map(); // a wrong key says so when the host acts; keep the cards
    }
  }

  render() {
    const list = $("pinned");
    const ids = new Set(this.cards.map((c) => c.id));
    for (const [id, item] of this.items) {
      if (!ids.has(id)) {
        item.remove();
        this.items.delete(id);
      }
    }
    // The newest pin first; existing rows are updated in place (a typed price survives).
    const ordered = [...this.cards].sort((a, b) => b.pinned_at_ms - a.pinned_at_ms);
    for (const [i, card] of ordered.entries()) {
      let item = this.items.get(card.id);
      if (!item) {
        item = this.item(card);
        this.items.set(card.id, item);
      }
      if (list.children[i] !== item) list.insertBefore(item, list.children[i] ?? null);
      this.fill(item, card);
    }
    $("pinned-empty").hidden = this.cards.length > 0;
    const timed = this.cards.some((c) => c.ends_at_ms != null);
    if (timed && !this.ticker) this.ticker = setInterval(() => this.tick(), TICK_MS);
    if (!timed && this.ticker) {
      clearInterval(this.ticker);
      this.ticker = null;
    }
  }

  item(card) {
    const li = document.createElement("li");
    li.className = "pinned-card";
    li.dataset.card = card.id;
    const head = document.createElement("div");
    head.className = "pinned-head";
    const title = document.createElement("strong");
    title.className = "pinned-title";
    const price = document.createElement("span");
    price.className = "pinned-price";
    head.append(title, price);
    const meta = document.createElement("p");
    meta.className = "pinned-meta";
    const stock = document.createElement("span");
    stock.className = "pinned-stock";
    const timer = document.createElement("span");
    timer.className = "pinned-timer";
    const limit = document.createElement("span");
    limit.className = "pinned-limit";
    const pace = document.createElement("span");
    pace.className = "pinned-pace";
    meta.append(stock, pace, timer, limit);

    const form = document.createElement("form");
    form.className = "pinned-actions";
    form.noValidate = true;
    const label = document.createElement("label");
    label.className = "visually-hidden";
    label.htmlFor = `price-${card.id}`;
    const input = document.createElement("input");
    input.id = `price-${card.id}`;
    input.className = "pinned-new-price";
    input.inputMode = "decimal";
    input.autocomplete = "off";
    const save = document.createElement("button");
    save.type = "submit";
    save.className = "button button-small";
    save.textContent = "Set price";
    const unpin = document.createElement("button");
    unpin.type = "button";
    unpin.className = "button button-small button-danger";
    unpin.textContent = "Unpin";
    form.append(label, input, save, unpin);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.setPrice(li.card, input, save);
    });
    unpin.addEventListener("click", () => this.unpin(li.card, unpin));
    li.append(head, meta, form);
    li.parts = { title, price, stock, pace, timer, limit, label, input };
    return li;
  }

  fill(li, card) {
    const { title, price, stock, pace, limit, label, input } = li.parts;
    li.card = card;
    title.textContent = card.title;
    price.replaceChildren(formatYuan(card.price));
    if (card.price < card.list_price) {
      const was = document.createElement("s");
      was.textContent = formatYuan(card.list_price);
      price.append(" ", was);
    }
    stock.textContent = `${card.stock_left} left in all stores`;
    stock.dataset.level = card.stock_left > 0 ? "ok" : "out";
    const rate = this.pace.get(card.id);
    pace.hidden = !rate;
    pace.textContent = rate ? `${rate.orders} orders in the last minute (${rate.units} units)` : "";
    pace.dataset.orders = String(rate?.orders ?? 0);
    limit.textContent = card.limit_per_shopper ? `limit ${card.limit_per_shopper} per shopper` : "";
    limit.hidden = !card.limit_per_shopper;
    label.textContent = `New price for ${card.title} (¥)`;
    input.placeholder = yuanInput(card.price);
    this.fillTimer(li);
  }

  fillTimer(li) {
    const { timer } = li.parts;
    const end = li.card.ends_at_ms;
    timer.hidden = end == null;
    if (end == null) return;
    const left = end - Date.now();
    timer.textContent = left > 0 ? `ends in ${formatCountdown(left)}` : "flash sale ended";
  }

  tick() {
    for (const li of this.items.values()) this.fillTimer(li);
  }

  async setPrice(card, input, button) {
    const price = parseYuan(input.value);
    if (price === null) {
      this.message("Enter the new price in yuan, like 8.80.");
      input.focus();
      return;
    }
    const token = this.requireToken();
    if (!token) return;
    button.disabled = true;
    try {
      const updated = await api(`${this.showPath}/cards/${encodeURIComponent(card.id)}`, {
        method: "PATCH",
        body: { price },
        token,
      });
      input.value = "";
      this.message(
        `“${updated.title}” now costs ${formatYuan(updated.price)} in every room.`,
        "info",
      );
      this.refresh();
    } catch (error) {
      this.message(explain(error, "change the price"));
    } finally {
      button.disabled = false;
    }
  }

  async unpin(card, button) {
    const token = this.requireToken();
    if (!token) return;
    button.disabled = true;
    try {
      await api(`${this.showPath}/cards/${encodeURIComponent(card.id)}`, {
        method: "DELETE",
        token,
      });
      this.message(`Unpinned “${card.title}”.`, "info");
      this.refresh();
      this.loadCatalog();
    } catch (error) {
      this.message(explain(error, "unpin the card"));
    } finally {
      button.disabled = false;
    }
  }
}
