// Buying in a branch room: the shopper's guest identity, the buy sheet, "My orders".
//
// Identity: the server's HttpOnly session cookie. Without one, the first order makes a
// guest account (POST /api/merchants/{m}/shoppers), and the room socket reconnects so it
// carries the cookie and receives this shopper's own "order" frames.
// Idempotency: one random key per Buy tap, reused when that tap's order is sent again.

import { ApiError, api } from "./api.js";
import { isEnded, stockText } from "./cards.js";
import { formatYuan, parseYuan, yuanInput } from "./money.js";

const QTY_MAX = 999; // the server's own bound per line
const LOCATE_TIMEOUT_MS = 10000;

const REFUSALS = {
  sold_out: () =>
    "Sold out at this store: someone got the last one. Try delivery or a smaller quantity.",
  over_limit: (card) =>
    card?.limit_per_shopper
      ? `Over the limit: at most ${card.limit_per_shopper} per person, counting earlier orders.`
      : "Over the limit per person for this product.",
  flash_ended: () => "The flash sale has ended.",
  insufficient_balance: (_card, balance) =>
    `Not enough stored value${balance ? ` (you have ${formatYuan(balance.spendable)})` : ""}.` +
    " Use less, or pay the rest at the store.",
  no_branch_can_ship: () => "No store can deliver this right now. Try picking it up in a store.",
  key_reused: () =>
    "This tap already placed an order with other details. Check “My orders” before buying again.",
  branch_closed: () => "This store is closed for pickups right now. Try delivery.",
  stored_value_over_total: () => "Use at most the order total in stored value.",
};

export const ORDER_STATES = {
  placed: "Order placed",
  ready: "Ready for pickup",
  shipped: "On its way",
  picked_up: "Picked up",
  delivered: "Delivered",
  completed: "Completed",
  cancelled: "Cancelled",
  expired: "Expired",
  refunded: "Refunded",
};
const OPEN_STATES = new Set(["placed", "ready", "shipped", "picked_up", "delivered"]);

const $ = (id) => document.getElementById(id);

/** A random Idempotency-Key (getRandomValues works on plain http too, unlike randomUUID). */
export function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export class Shop {
  /**
   * `room()`: the last GET of the room ({show, branch}); `board`: the CardBoard;
   * `onSignedIn()`: called once a new session cookie is set.
   */
  constructor({ showId, branchId, room, board, onSignedIn }) {
    this.showId = showId;
    this.branchId = branchId;
    this.room = room;
    this.board = board;
    this.onSignedIn = onSignedIn;
    this.show = null; // GET /api/shows/{show}: merchant and the rooms' branch names
    this.me = null; // the signed-in shopper of this merchant, or null
    this.balance = null; // {balance, held, spendable}
    this.orders = new Map(); // id -> order
    this.card = null; // the card the sheet is buying
    this.key = null; // this tap's Idempotency-Key
    this.busy = false;
    this.placed = null; // the order the sheet confirms
    this.located = false; // delivery coordinates came from the device
    this.sheet = $("buy-sheet");
    this.wire();
  }

  get ordersPath() {
    const show = encodeURIComponent(this.showId);
    return `/api/shows/${show}/rooms/${encodeURIComponent(this.branchId)}/orders`;
  }

  /** Who is signed in (a shopper of this merchant?), then their balance and orders. */
  async init() {
    try {
      await this.loadShow();
      const actor = await api("/api/sessions/me");
      if (actor.role === "shopper" && actor.merchant === this.show.merchant) this.me = actor;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      return; // no session (401) or unreachable: asked again when buying
    }
    if (this.me) await Promise.all([this.loadBalance(), this.loadOrders()]);
  }

  async loadShow() {
    this.show ??= await api(`/api/shows/${encodeURIComponent(this.showId)}`);
    return this.show;
  }

  branchName(id) {
    const room = this.show?.rooms.find((r) => r.branch.id === id);
    return room?.branch.name ?? (id === this.branchId ? this.room()?.branch.name : null) ?? id;
  }

  async loadBalance() {
    try {
      this.balance = await api("/api/me/balance");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status === 401) this.signedOut();
    }
    return this.balance;
  }

  async loadOrders() {
    try {
      const { orders } = await api("/api/me/orders");
      this.orders = new Map(orders.map((o) => [o.id, o]));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status === 401) this.signedOut();
    }
    this.renderOrders();
  }

  signedOut() {
    this.me = null;
    this.balance = null;
  }

  /** A guest account for this merchant; its session cookie comes with the answer. */
  async signUp(name) {
    const merchant = (await this.loadShow()).merchant;
    const body = name ? { name } : {};
    const actor = await api(`/api/merchants/${encodeURIComponent(merchant)}/shoppers`, {
      method: "POST",
      body,
    });
    this.me = { role: actor.role, merchant: actor.merchant, shopper: actor.shopper };
    this.balance = { balance: 0, held: 0, spendable: 0 };
    this.onSignedIn();
  }

  // -- the sheet ---------------------------------------------------------------------

  wire() {
    const form = $("buy-form");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    form.addEventListener("input", () => this.renderTotal());
    for (const radio of form.elements.fulfillment) {
      radio.addEventListener("change", () => this.renderFulfillment());
    }
    $("use-balance").addEventListener("change", () => {
      $("balance-amount-field").hidden = !$("use-balance").checked;
      if ($("use-balance").checked && !$("balance-amount").value) {
        const most = Math.min(this.balance?.spendable ?? 0, this.total());
        $("balance-amount").value = yuanInput(most);
      }
      this.renderTotal();
    });
    $("locate").addEventListener("click", () => this.locate());
    $("buy-close").addEventListener("click", () => this.sheet.close());
    $("buy-ok").addEventListener("click", () => this.sheet.close());
  }

  /** A Buy tap: a new key, a fresh sheet for `card`. */
  open(card) {
    if (!card) return;
    this.card = card;
    this.key = newKey();
    this.placed = null;
    const form = $("buy-form");
    const branch = this.room()?.branch;
    $("buy-branch").textContent = branch?.name ?? "this store";
    $("pickup-branch").textContent = branch?.name ?? "this store";
    $("buy-fields").hidden = false;
    $("buy-done").hidden = true;
    this.error(null);
    $("name-field").hidden = Boolean(this.me);
    const qty = $("buy-qty");
    qty.max = String(card.limit_per_shopper ?? QTY_MAX);
    qty.value = "1";
    $("qty-hint").hidden = !card.limit_per_shopper;
    $("qty-hint").textContent = card.limit_per_shopper
      ? `At most ${card.limit_per_shopper} per person.`
      : "";
    const pickup = form.elements.fulfillment[0];
    const delivery = form.elements.fulfillment[1];
    pickup.disabled = !card.pickup;
    delivery.disabled = !card.delivery;
    (card.pickup || !card.delivery ? pickup : delivery).checked = true;
    $("use-balance").checked = false;
    $("balance-amount").value = "";
    $("balance-amount-field").hidden = true;
    this.renderCard();
    this.renderBalance();
    this.renderFulfillment();
    this.setBusy(false);
    if (!this.sheet.open) this.sheet.showModal();
    if (this.me) this.loadBalance().then(() => this.renderBalance());
  }

  /** The board changed a card: keep an open sheet's price and stock current. */
  refresh(card) {
    if (!this.sheet.open || !this.card || card.id !== this.card.id) return;
    this.card = card;
    this.renderCard();
    if (this.placed) return;
    const closed = this.closed();
    if (closed) this.error(closed);
  }

  /** Why this sheet can no longer buy its card (unpinned, or the flash sale ended). */
  closed() {
    if (this.card.hidden) return "The host has taken this product off the show.";
    if (isEnded(this.card)) return REFUSALS.flash_ended();
    return null;
  }

  renderCard() {
    const card = this.card;
    $("buy-title").textContent = card.title;
    const was = card.price < card.list_price ? ` (list price ${formatYuan(card.list_price)})` : "";
    $("buy-price").textContent = `${formatYuan(card.price)} each${was}`;
    $("pickup-hint").textContent = `· ${stockText(card).replace(" · delivery available", "")}`;
    $("delivery-hint").textContent = card.delivery
      ? "· from the nearest store that has it"
      : "· no store can deliver it now";
    this.renderTotal();
  }

  renderBalance() {
    const box = $("stored-value");
    box.hidden = !this.me;
    const spendable = this.balance?.spendable ?? 0;
    $("balance-text").textContent = `(${formatYuan(spendable)} available)`;
    $("use-balance").disabled = spendable <= 0;
    if (spendable <= 0) {
      $("use-balance").checked = false;
      $("balance-amount-field").hidden = true;
    }
  }

  fulfillment() {
    return $("buy-form").elements.fulfillment.value || "pickup";
  }

  renderFulfillment() {
    const delivery = this.fulfillment() === "delivery";
    $("delivery-fields").hidden = !delivery;
    if (delivery && $("buy-lat").value === "" && $("buy-lng").value === "") {
      const branch = this.room()?.branch;
      if (branch?.lat != null && branch?.lng != null) {
        $("buy-lat").value = String(branch.lat);
        $("buy-lng").value = String(branch.lng);
      }
      // Already allowed: use the device's position without asking anything.
      navigator.permissions
        ?.query({ name: "geolocation" })
        .then((status) => {
          if (status.state === "granted") this.locate();
        })
        .catch(() => {});
    }
  }

  locate() {
    const hint = $("locate-hint");
    if (!navigator.geolocation) {
      hint.textContent = "This browser cannot tell where you are: enter the coordinates.";
      return;
    }
    hint.textContent = "Finding you…";
    navigator.geolocation.getCurrentPosition(
      ({ coords }) => {
        $("buy-lat").value = coords.latitude.toFixed(6);
        $("buy-lng").value = coords.longitude.toFixed(6);
        this.located = true;
        hint.textContent = "Your current location is filled in.";
      },
      () => {
        hint.textContent = "Location not available: enter it, or keep the store's location.";
      },
      { timeout: LOCATE_TIMEOUT_MS, maximumAge: 60000 },
    );
  }

  quantity() {
    const qty = Number($("buy-qty").value);
    return Number.isInteger(qty) ? qty : NaN;
  }

  total() {
    const qty = this.quantity();
    return Number.isInteger(qty) && qty > 0 ? qty * this.card.price : 0;
  }

  storedValue() {
    if (!this.me || !$("use-balance").checked) return 0;
    return parseYuan($("balance-amount").value);
  }

  renderTotal() {
    if (!this.card) return;
    const total = this.total();
    $("buy-total").textContent = formatYuan(total);
    const used = this.storedValue() ?? 0;
    const due = Math.max(0, total - used);
    $("buy-due").textContent =
      used > 0
        ? `· ${formatYuan(used)} from stored value, ${formatYuan(due)} at the store`
        : "· pay at the store";
  }

  error(text) {
    const box = $("buy-error");
    box.textContent = text ?? "";
    box.hidden = !text;
  }

  setBusy(busy) {
    this.busy = busy;
    const button = $("buy-submit");
    button.disabled = busy;
    button.textContent = busy ? "Placing order…" : "Place order";
  }

  /** The order body from the sheet, or a message saying what to fix. */
  body() {
    const card = this.card;
    const qty = this.quantity();
    const most = card.limit_per_shopper ?? QTY_MAX;
    if (!Number.isInteger(qty) || qty < 1 || qty > most) {
      return { problem: `Choose a quantity from 1 to ${most}.`, input: "buy-qty" };
    }
    const body = { lines: [{ sku: card.sku, qty }], fulfillment: this.fulfillment() };
    if (body.fulfillment === "delivery") {
      const lat = $("buy-lat").valueAsNumber;
      const lng = $("buy-lng").valueAsNumber;
      if (
        !Number.isFinite(lat) ||
        Math.abs(lat) > 90 ||
        !Number.isFinite(lng) ||
        Math.abs(lng) > 180
      ) {
        return {
          problem: "Say where to deliver: a latitude and longitude, or use your location.",
          input: "buy-lat",
        };
      }
      body.destination = { lat, lng };
      const address = $("buy-address").value.trim();
      if (address) body.address = address;
    }
    const used = this.storedValue();
    if (used === null) {
      return {
        problem: "Enter the stored value to use in yuan, like 12.50.",
        input: "balance-amount",
      };
    }
    if (used > (this.balance?.spendable ?? 0)) {
      const have = formatYuan(this.balance?.spendable ?? 0);
      return { problem: `You have ${have} of stored value to use.`, input: "balance-amount" };
    }
    if (used > qty * card.price) {
      return { problem: "Use at most the order total in stored value.", input: "balance-amount" };
    }
    if (used > 0) body.stored_value = used;
    return { body };
  }

  async submit() {
    if (this.busy || !this.card) return;
    const closed = this.closed();
    if (closed) {
      this.error(closed); // its price is gone: an order now would not be what the card said
      return;
    }
    const { body, problem, input } = this.body();
    if (problem) {
      this.error(problem);
      $(input)?.focus();
      return;
    }
    this.error(null);
    this.setBusy(true);
    const card = this.card;
    const key = this.key;
    try {
      const order = await this.place(body, key);
      this.confirm(order, key);
    } catch (error) {
      if (this.key === key) this.error(this.explain(error, card));
    } finally {
      if (this.key === key) this.setBusy(false);
    }
  }

  /** Place the order with this tap's key; a first order signs up a guest first. */
  async place(body, key) {
    const name = $("buy-name").value.trim();
    for (let attempt = 0; ; attempt += 1) {
      if (!this.me) await this.signUp(name);
      try {
        return await api(this.ordersPath, {
          method: "POST",
          body,
          headers: { "Idempotency-Key": key },
        });
      } catch (error) {
        // The session cookie expired or was revoked: once, as a new guest.
        if (error instanceof ApiError && error.status === 401 && attempt === 0) {
          this.signedOut();
          continue;
        }
        throw error;
      }
    }
  }

  explain(error, card) {
    if (!(error instanceof ApiError)) return `Something went wrong: ${error.message}`;
    if (error.status === 0) {
      return (
        "Cannot reach the server, so the order may not have gone through. Tap " +
        "“Place order” again when you are back online: you will not buy twice."
      );
    }
    const known = REFUSALS[error.code];
    if (known) return known(card, this.balance);
    if (error.status === 410) return "The show has ended: buying here is closed.";
    if (error.status === 404) return "This product or store room is no longer available.";
    return error.message;
  }

  /** Placed: into "My orders", and onto the sheet if it still shows this tap. */
  confirm(order, key) {
    this.upsertOrder(order);
    if (!this.sheet.open || this.key !== key || this.placed) return;
    this.placed = order;
    this.renderDone(order);
    this.loadBalance().then(() => {
      if (this.placed === order) this.renderDone(order);
    });
  }

  renderDone(order) {
    $("buy-fields").hidden = true;
    $("buy-done").hidden = false;
    const pickup = order.fulfillment === "pickup";
    $("done-pickup").hidden = !pickup;
    $("done-ship").hidden = pickup;
    if (pickup) {
      $("pickup-code").textContent = order.pickup_code ?? "";
      $("done-branch").textContent = this.branchName(order.branch);
      $("done-expires").textContent = order.expires_at_ms
        ? `We keep it for you until ${clock(order.expires_at_ms)}.`
        : "";
    } else {
      $("ship-from").textContent = this.branchName(order.ship_from);
      $("done-address").textContent = order.address ? ` to ${order.address}` : "";
    }
    $("done-total").textContent = formatYuan(order.total);
    $("cash-due").textContent = order.cash_due > 0 ? formatYuan(order.cash_due) : "Nothing";
    $("done-balance-row").hidden = !this.balance;
    $("done-balance").textContent = formatYuan(this.balance?.spendable ?? 0);
    $("buy-ok").focus();
  }

  // -- my orders ---------------------------------------------------------------------

  upsertOrder(order) {
    this.orders.set(order.id, order);
    this.renderOrders();
  }

  /** An "order" frame: {order, state, branch, ship_from, cash_due} of one of mine. */
  onOrder(frame) {
    const known = this.orders.get(frame.order);
    if (!known) {
      this.loadOrders();
      return;
    }
    const open = OPEN_STATES.has(frame.state);
    this.upsertOrder({ ...known, state: frame.state, cash_due: open ? frame.cash_due : 0 });
  }

  renderOrders() {
    const orders = [...this.orders.values()].sort((a, b) => b.placed_at_ms - a.placed_at_ms);
    $("my-orders").hidden = !orders.length;
    $("orders").replaceChildren(...orders.map((order) => this.orderItem(order)));
  }

  orderItem(order) {
    const li = document.createElement("li");
    li.className = "order";
    li.dataset.order = order.id;
    li.dataset.state = order.state;
    const head = document.createElement("div");
    head.className = "order-head";
    const what = document.createElement("strong");
    what.textContent = order.lines
      .map((line) => `${this.board.titleOf(line.sku) ?? "Item"} × ${line.qty}`)
      .join(", ");
    const state = document.createElement("span");
    state.className = "badge order-state";
    state.textContent = ORDER_STATES[order.state] ?? order.state;
    head.append(what, state);
    const meta = document.createElement("p");
    meta.className = "order-meta";
    const how =
      order.fulfillment === "pickup"
        ? `Pickup at ${this.branchName(order.ship_from)}`
        : `Delivery from ${this.branchName(order.ship_from)}`;
    meta.textContent = `${formatYuan(order.total)} · ${how}`;
    li.append(head, meta);
    const open = OPEN_STATES.has(order.state);
    if (open && order.pickup_code && ["placed", "ready"].includes(order.state)) {
      const code = document.createElement("p");
      code.className = "order-code";
      code.append("Pickup code ");
      const digits = document.createElement("strong");
      digits.textContent = order.pickup_code;
      code.append(digits);
      li.append(code);
    }
    if (open && order.cash_due > 0) {
      const due = document.createElement("p");
      due.className = "order-meta";
      due.textContent = `Pay ${formatYuan(order.cash_due)} at handover`;
      li.append(due);
    }
    return li;
  }
}
