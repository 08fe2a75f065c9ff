// The branch console's orders: the queue to fulfil (with the counter's actions) and what
// is done today. Orders come whole from the console socket (snapshot, then "order"
// frames) and from the answers to the actions; an older copy never replaces a newer one.

import { ApiError, api } from "./api.js";
import { h, say } from "./dom.js";
import { formatYuan } from "./money.js";
import { formatTime } from "./period.js";

const OPEN = new Set(["placed", "ready", "shipped", "picked_up", "delivered"]);
const STATE_TEXT = {
  placed: "new",
  ready: "ready for pickup",
  shipped: "shipped",
  picked_up: "picked up · payment due",
  delivered: "delivered · payment due",
  completed: "completed",
  cancelled: "cancelled",
  expired: "expired (not collected)",
  refunded: "refunded",
};

/** The actions a counter offers for an order this branch fulfils, by state. */
function actionsFor(order) {
  const pickup = order.fulfillment === "pickup";
  switch (order.state) {
    case "placed":
      return pickup
        ? [["ready", "Mark ready"], ["cancel", "Cancel"]]
        : [["ship", "Ship"], ["cancel", "Cancel"]];
    case "ready":
      return [["cancel", "Cancel"]];
    case "shipped":
      return [["deliver", "Delivered"]];
    case "picked_up":
    case "delivered":
      return [["collect", `Collected ${formatYuan(order.cash_due)}`]];
    default:
      return [];
  }
}

function explain(error, doing) {
  if (!(error instanceof ApiError)) return `Could not ${doing}: ${error.message}`;
  if (error.status === 0) return "Cannot reach the server. Check the connection and try again.";
  if (error.status === 401) return "Your session has ended. Sign in again.";
  return `Could not ${doing}: ${error.message}`;
}

export class BranchOrders {
  constructor({ branchId, skuName }) {
    this.branchId = branchId;
    this.base = `/api/branches/${encodeURIComponent(branchId)}`;
    this.skuName = skuName; // sku id -> its name (the catalog, when loaded)
    this.orders = new Map(); // id -> order
    this.items = new Map(); // id -> <li>
    document.getElementById("pickup-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.pickUp();
    });
  }

  reset(orders) {
    this.orders.clear();
    for (const order of orders) this.orders.set(order.id, order);
    this.render();
  }

  /** A newer copy of an order (a frame or an action's answer). */
  update(order) {
    const known = this.orders.get(order.id);
    if (known && known.updated_at_ms > order.updated_at_ms) return;
    this.orders.set(order.id, order);
    this.render();
  }

  render() {
    const all = [...this.orders.values()];
    const open = all.filter((o) => OPEN.has(o.state));
    open.sort((a, b) => a.placed_at_ms - b.placed_at_ms); // the oldest waits longest
    const done = all.filter((o) => !OPEN.has(o.state));
    done.sort((a, b) => b.updated_at_ms - a.updated_at_ms);
    this.fill(document.getElementById("queue"), open);
    this.fill(document.getElementById("done"), done);
    document.getElementById("queue-count").textContent = String(open.length);
    document.getElementById("queue-empty").hidden = open.length > 0;
    document.getElementById("done-empty").hidden = done.length > 0;
  }

  fill(list, orders) {
    const items = orders.map((order) => {
      const known = this.items.get(order.id);
      if (known?.order === order) return known;
      const item = this.item(order);
      this.items.set(order.id, item);
      return item;
    });
    list.replaceChildren(...items);
  }

  item(order) {
    const ours = order.ship_from === this.branchId;
    const lines = order.lines.map(
      (line) => `${line.qty} × ${this.skuName(line.sku)}`,
    );
    const how =
      order.fulfillment === "pickup"
        ? "Pickup at the counter"
        : `Delivery${order.address ? ` to ${order.address}` : ""}`;
    const money =
      order.cash_due > 0
        ? `${formatYuan(order.cash_due)} to collect`
        : order.stored_value > 0
          ? "paid with stored value"
          : "";
    const buttons = ours
      ? actionsFor(order).map(([action, label]) =>
          h(
            "button",
            {
              type: "button",
              className: `button button-small${action === "cancel" ? " button-danger" : ""}`,
              dataset: { action },
              onclick: (event) => this.act(order, action, event.currentTarget),
            },
            label,
          ),
        )
      : [];
    const elsewhere = !ours
      ? h("p", { className: "order-meta" }, "Shipped by another branch that holds the stock.")
      : null;
    const li = h(
      "li",
      { className: "order console-order", dataset: { order: order.id, state: order.state } },
      h(
        "div",
        { className: "order-head" },
        h("strong", {}, `#${order.id.slice(-6).toUpperCase()} · ${formatYuan(order.total)}`),
        h("span", { className: "badge order-state" }, STATE_TEXT[order.state] ?? order.state),
      ),
      h("p", { className: "order-lines" }, lines.join(", ")),
      h(
        "p",
        { className: "order-meta" },
        [how, `placed ${formatTime(order.placed_at_ms)}`, money].filter(Boolean).join(" · "),
      ),
      elsewhere,
      buttons.length ? h("div", { className: "buttons order-actions" }, buttons) : null,
    );
    li.order = order;
    return li;
  }

  async act(order, action, button) {
    // Cancelling cannot be undone: the first press asks, the second does it.
    if (action === "cancel" && button.dataset.armed !== "true") {
      button.dataset.armed = "true";
      button.textContent = "Really cancel?";
      setTimeout(() => {
        if (button.isConnected) {
          button.dataset.armed = "false";
          button.textContent = "Cancel";
        }
      }, 4000);
      return;
    }
    const message = document.getElementById("order-message");
    button.disabled = true;
    try {
      const path = `${this.base}/orders/${encodeURIComponent(order.id)}/${action}`;
      this.update(await api(path, { method: "POST" }));
      say(message, null);
    } catch (error) {
      button.disabled = false;
      say(message, explain(error, "update the order"));
    }
  }

  async pickUp() {
    const input = document.getElementById("pickup-code");
    const message = document.getElementById("pickup-message");
    const code = input.value.trim();
    if (!/^\d{6}$/.test(code)) {
      say(message, "The pickup code has 6 digits.");
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    input.removeAttribute("aria-invalid");
    try {
      const order = await api(`${this.base}/pickups`, { method: "POST", body: { code } });
      this.update(order);
      input.value = "";
      const due =
        order.cash_due > 0
          ? `Collect ${formatYuan(order.cash_due)}, then press “Collected”.`
          : "Fully paid.";
      say(message, `Handed over #${order.id.slice(-6).toUpperCase()}. ${due}`, "info");
    } catch (error) {
      const text =
        error instanceof ApiError && error.code === "wrong_pickup_code"
          ? "No order waiting here has that code. Check the digits with the shopper."
          : explain(error, "hand over the order");
      say(message, text);
      input.focus();
    }
  }
}
