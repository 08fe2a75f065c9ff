// The branch console: the branch room's link and QR code, viewers, the fulfillment
// queue with the counter's actions, customers and today's statement, all live over
// the console socket (/ws/branches/{branch}/console): a snapshot, then frames.

import { api, formatCount, pathIds } from "./api.js";
import { BranchOrders } from "./branch-orders.js";
import { copyButton, h } from "./dom.js";
import { formatYuan } from "./money.js";
import { formatTime, startOfToday } from "./period.js";
import { qrSvg } from "./qr.js";
import { drawSalesChart } from "./sales-chart.js";
import { whoAmI, toSignIn, wireSignOut } from "./signout.js";
import { RoomSocket } from "./socket.js";

const [, branchId] = pathIds(); // branches/{branch}/console
const $ = (id) => document.getElementById(id);
const skuNames = new Map();
const orders = new BranchOrders({ branchId, skuName: (sku) => skuNames.get(sku) ?? sku });

const page = { show: null, roomUrl: null, customers: [] };
window.lianbo = { page, orders, socket: null };

function renderShow(show) {
  page.show = show;
  $("show-title").textContent = show ? show.title : "No show yet";
  const status = $("show-status");
  status.textContent = show ? show.status : "";
  status.hidden = !show;
  status.className = `badge ${show?.status === "live" ? "badge-live" : "badge-dim"}`;
  const url = show?.room ? new URL(show.room.url, window.location.origin).href : null;
  if (url === page.roomUrl) return;
  page.roomUrl = url;
  const link = $("room-link");
  link.hidden = !url;
  link.nextElementSibling?.remove();
  const qr = $("qr");
  if (!url) {
    qr.replaceChildren(h("p", { className: "muted" }, "HQ has not scheduled a show yet."));
    return;
  }
  link.href = url;
  link.textContent = url;
  link.after(copyButton(() => url, "Copy the room link"));
  qr.replaceChildren(
    qrSvg(url, `QR code of the ${$("branch-name").textContent} room link`),
    h("figcaption", { className: "muted" }, "Scan to watch and buy"),
  );
}

function renderStatement({ statement, series }) {
  $("st-sales").textContent = formatYuan(statement.sales);
  $("st-commission").textContent = formatYuan(-statement.commission);
  $("st-cashback").textContent = formatYuan(-statement.cashback_cost);
  $("st-net").textContent = formatYuan(statement.net);
  drawSalesChart($("chart"), series);
}

/** When a customer first bought: the time today, else the date. */
function since(ms) {
  return ms >= startOfToday() ? `today ${formatTime(ms)}` : new Date(ms).toLocaleDateString();
}

function renderCustomers(customers) {
  page.customers = customers;
  $("customers-count").textContent = String(customers.length);
  const items = customers.map((c) =>
    h(
      "li",
      { className: "customer" },
      h("strong", {}, c.name ?? "guest"),
      h("span", { className: "muted" }, since(c.since_ms)),
    ),
  );
  if (!items.length) items.push(h("li", { className: "muted" }, "No customers yet."));
  $("customers").replaceChildren(...items);
}

function renderViewers(count) {
  $("viewers").textContent = formatCount(count);
  $("viewers").dataset.count = String(count);
}

function onFrame(type, data) {
  switch (type) {
    case "snapshot":
      $("branch-name").textContent = data.branch.name;
      document.title = `${data.branch.name} · Branch console · Lianbo Live`;
      $("branch-closed").hidden = data.branch.is_open;
      renderShow(data.show);
      renderViewers(data.viewers);
      orders.reset(data.orders);
      renderCustomers(data.customers);
      renderStatement(data);
      break;
    case "order":
      orders.update(data.order);
      break;
    case "viewers":
      renderViewers(data.count);
      break;
    case "statement":
      renderStatement(data);
      break;
    case "customers":
      renderCustomers(data.customers);
      break;
    case "show":
      renderShow(data.show);
      break;
    default:
      break; // a newer server's frame
  }
}

const LIVE_TEXT = { open: "live", connecting: "connecting…", closed: "reconnecting…" };

async function onSocketState(state) {
  document.body.dataset.socket = state;
  $("live").textContent = LIVE_TEXT[state] ?? state;
  $("live").className = `badge live-state ${state === "open" ? "badge-ok" : "badge-dim"}`;
  if (state === "closed" && !(await whoAmI())) {
    socket.stop(); // refused because the session ended: sign in again
    toSignIn();
  }
}

async function loadSkuNames(merchant) {
  try {
    const { skus } = await api(`/api/merchants/${encodeURIComponent(merchant)}/catalog`);
    for (const sku of skus) skuNames.set(sku.id, sku.name);
    orders.render();
  } catch {
    // ids stay readable enough; the next visit tries again
  }
}

const socket = new RoomSocket(
  `/ws/branches/${encodeURIComponent(branchId)}/console?from=${startOfToday()}`,
  { onFrame, onState: onSocketState },
);
window.lianbo.socket = socket;

wireSignOut($("sign-out"));
$("print").addEventListener("click", () => window.print());
window.addEventListener("online", () => socket.wake());

const me = await whoAmI();
if (!me) {
  toSignIn();
} else {
  await loadSkuNames(me.merchant);
  socket.start();
}
