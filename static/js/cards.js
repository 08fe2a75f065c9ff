// The live product cards of a branch room: the list under the video and a spotlight on it.
//
// Card views come from the room socket (snapshot, card.shown/updated/hidden, stock); each
// carries this branch's own stock. Prices are fen. The countdown runs on this device's
// clock; a card whose flash end has passed is shown ended at once.

import { formatCountdown, formatYuan } from "./money.js";

const TICK_MS = 1000;
const LOW_STOCK = 3;

/** The state of a card's Buy button: [enabled, label, reason shown on the card]. */
export function buyState(card, { showEnded = false } = {}) {
  if (showEnded) return [false, "Show ended", "The show has ended"];
  if (isEnded(card)) return [false, "Sale ended", "The flash sale has ended"];
  if (card.pickup) return [true, "Buy", ""];
  if (card.delivery) return [true, "Buy for delivery", ""];
  if (card.available_here > 0) return [false, "Store closed", "This store is closed right now"];
  return [false, "Sold out", "Sold out everywhere"];
}

export function isEnded(card) {
  return Boolean(card.ended) || (card.ends_at_ms != null && Date.now() >= card.ends_at_ms);
}

/** "10 left here", "Sold out here · delivery available", "Sold out". */
export function stockText(card) {
  const n = card.available_here;
  if (n > 0) return `${n} left here`;
  return card.delivery ? "Sold out here · delivery available" : "Sold out";
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The DOM of one card (list or spotlight); `fill` keeps it current. */
function cardElement(card, onBuy, { compact = false } = {}) {
  const root = el("article", compact ? "card card-compact" : "card");
  const titleId = `${compact ? "spot" : "card"}-${card.id}-title`;
  root.setAttribute("aria-labelledby", titleId);
  const flash = el("span", "badge badge-flash", "⚡ Flash price");
  const title = el("h3", "card-title");
  title.id = titleId;
  const price = el("p", "card-price");
  const now = el("strong", "price-now");
  const list = el("s", "price-list");
  price.append(now, " ", list);
  const stock = el("p", "card-stock");
  const limit = el("p", "card-limit");
  const timer = el("p", "card-timer");
  timer.setAttribute("role", "timer");
  const buy = el("button", "button button-live card-buy");
  buy.type = "button";
  buy.addEventListener("click", () => onBuy(root.card));
  const body = el("div", "card-body");
  body.append(flash, title, price, stock);
  if (!compact) body.append(limit);
  body.append(timer);
  root.append(body, buy);
  root.parts = { flash, title, now, list, stock, limit, timer, buy };
  return root;
}

function fill(root, card, context) {
  const { flash, title, now, list, stock, limit, timer, buy } = root.parts;
  root.card = card;
  root.dataset.card = card.id;
  root.dataset.sku = card.sku;
  const discounted = card.price < card.list_price;
  flash.hidden = !discounted;
  title.textContent = card.title;
  now.textContent = formatYuan(card.price);
  list.hidden = !discounted;
  list.textContent = discounted ? formatYuan(card.list_price) : "";
  list.setAttribute("aria-label", `list price ${formatYuan(card.list_price)}`);
  stock.textContent = stockText(card);
  stock.dataset.level =
    card.available_here <= 0 ? "out" : card.available_here <= LOW_STOCK ? "low" : "ok";
  limit.textContent = card.limit_per_shopper ? `Limit ${card.limit_per_shopper} per person` : "";
  limit.hidden = !card.limit_per_shopper;
  const [enabled, label, why] = buyState(card, context);
  buy.disabled = !enabled;
  buy.textContent = label;
  buy.title = why;
  root.dataset.state = enabled ? "open" : "closed";
  fillTimer(timer, card);
}

function fillTimer(timer, card) {
  if (card.ends_at_ms == null) {
    timer.hidden = true;
    return;
  }
  timer.hidden = false;
  const left = card.ends_at_ms - Date.now();
  timer.textContent = left > 0 ? `⏱ Ends in ${formatCountdown(left)}` : "⏱ Flash sale ended";
  timer.dataset.ending = String(left > 0 && left < 60000);
}

export class CardBoard {
  /** `list`: the cards section; `spotlight`: the box over the video; `onBuy(card)`. */
  constructor({ list, spotlight, onBuy, onChange = () => {} }) {
    this.list = list;
    this.spotlight = spotlight;
    this.onBuy = onBuy;
    this.onChange = onChange; // (card) after any change to it, e.g. to refresh an open sheet
    this.cards = new Map(); // id -> card view
    this.elements = new Map(); // id -> list element
    this.titles = new Map(); // sku -> title of a card shown for it (for the orders list)
    this.spot = null; // { id, element }
    this.context = { showEnded: false };
    this.ticker = null;
    spotlight.querySelector(".spotlight-close")?.addEventListener("click", () => {
      this.setSpotlight(null);
    });
  }

  get(id) {
    return this.cards.get(id) ?? null;
  }

  /** The card title for a SKU, if a card for it is (or was) on show. */
  titleOf(sku) {
    return this.titles.get(sku) ?? null;
  }

  /** A snapshot: exactly these cards (the server lists them oldest pin first). */
  reset(cards) {
    for (const id of [...this.cards.keys()]) {
      if (!cards.some((c) => c.id === id)) this.remove(id);
    }
    for (const card of cards) this.upsert(card);
    for (const card of cards) this.list.prepend(this.elements.get(card.id)); // newest first
    if (!this.spot && cards.length) this.setSpotlight(cards[cards.length - 1].id);
  }

  /** A card shown or updated. `spotlight`: a new pin, put it over the video. */
  upsert(card, { spotlight = false } = {}) {
    this.cards.set(card.id, card);
    this.titles.set(card.sku, card.title);
    let element = this.elements.get(card.id);
    if (!element) {
      element = cardElement(card, this.onBuy);
      this.elements.set(card.id, element);
      this.list.prepend(element); // the newest pin first
    }
    fill(element, card, this.context);
    if (spotlight) this.setSpotlight(card.id);
    else if (this.spot?.id === card.id) fill(this.spot.element, card, this.context);
    this.tick();
    this.onChange(card);
  }

  remove(id) {
    const card = this.cards.get(id);
    this.cards.delete(id);
    this.elements.get(id)?.remove();
    this.elements.delete(id);
    if (this.spot?.id === id) this.setSpotlight(null);
    if (card) this.onChange({ ...card, hidden: true });
  }

  /** Stock moved: {sku, cards: [{id, available_here, pickup, delivery}]}. */
  stock({ cards = [] }) {
    for (const change of cards) {
      const card = this.cards.get(change.id);
      if (!card) continue;
      const { available_here, pickup, delivery } = change;
      this.upsert({ ...card, available_here, pickup, delivery });
    }
  }

  setContext(context) {
    this.context = { ...this.context, ...context };
    for (const card of this.cards.values()) this.upsert(card);
  }

  setSpotlight(id) {
    const card = id == null ? null : this.cards.get(id);
    if (!card) {
      this.spot = null;
      this.spotlight.hidden = true;
      this.spotlight.querySelector(".spotlight-card")?.replaceChildren();
      return;
    }
    if (this.spot?.id !== id) {
      const element = cardElement(card, this.onBuy, { compact: true });
      this.spotlight.querySelector(".spotlight-card").replaceChildren(element);
      this.spot = { id, element };
    }
    fill(this.spot.element, card, this.context);
    this.spotlight.hidden = false;
  }

  /** Countdowns: one timer for all cards, running only while some card has an end. */
  tick() {
    const timed = [...this.cards.values()].filter((c) => c.ends_at_ms != null);
    if (!timed.length) {
      clearInterval(this.ticker);
      this.ticker = null;
      return;
    }
    this.ticker ??= setInterval(() => this.refreshTimers(), TICK_MS);
  }

  refreshTimers() {
    for (const [id, card] of this.cards) {
      if (card.ends_at_ms == null) continue;
      const element = this.elements.get(id);
      const wasOpen = element.dataset.state === "open";
      fillTimer(element.parts.timer, card);
      if (this.spot?.id === id) fillTimer(this.spot.element.parts.timer, card);
      if (wasOpen && isEnded(card)) this.upsert(card); // the Buy button closes at the end
    }
  }
}
