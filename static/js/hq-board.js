// HQ's live board: every branch's viewers, orders and sales today, ranked, with totals,
// over the board socket (/ws/merchants/{merchant}/board): a snapshot, then "board" frames.

import { formatCount } from "./api.js";
import { h } from "./dom.js";
import { formatYuan } from "./money.js";

const $ = (id) => document.getElementById(id);

export function renderBoard(board) {
  const { show, rows, totals } = board;
  $("board-show").textContent = show ? show.title : "No show yet";
  const status = $("board-status");
  status.hidden = !show;
  status.textContent = show?.status ?? "";
  status.className = `badge ${show?.status === "live" ? "badge-live" : "badge-dim"}`;
  $("total-viewers").textContent = formatCount(totals.viewers);
  $("total-orders").textContent = String(totals.orders);
  $("total-sales").textContent = formatYuan(totals.sales);
  $("total-settled").textContent = formatYuan(totals.settled);
  const top = Math.max(1, ...rows.map((r) => r.sales));
  $("board-rows").replaceChildren(
    ...rows.map((row) =>
      h(
        "tr",
        { dataset: { branch: row.branch, rank: String(row.rank) } },
        h("td", { className: "rank" }, String(row.rank)),
        h(
          "td",
          {},
          h("strong", {}, row.name),
          row.is_open ? null : h("span", { className: "muted" }, " (closed)"),
          h("span", {
            className: "share",
            style: `width: ${Math.round((row.sales / top) * 100)}%`,
            "aria-hidden": "true",
          }),
        ),
        h("td", { className: "viewers" }, formatCount(row.viewers)),
        h("td", { className: "orders-count" }, String(row.orders)),
        h("td", { className: "sales" }, formatYuan(row.sales)),
        h("td", { className: "settled" }, formatYuan(row.settled)),
      ),
    ),
  );
}
