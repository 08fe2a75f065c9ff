// Sales over the show as a small SVG bar chart: one bar per time bucket the server chose
// (commerce.board.sales_series), the running total as a line over the bars.

import { formatYuan } from "./money.js";
import { formatTime } from "./period.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 320;
const HEIGHT = 140;
const PAD = { top: 14, right: 8, bottom: 20, left: 8 };
const SLOTS_MIN = 12; // a show's first minutes still draw as bars, not one slab

function node(tag, attrs = {}, text = null) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  if (text !== null) el.textContent = text;
  return el;
}

/** Redraw `svg` (an <svg> element) for `series` {start_ms, bucket_ms, amounts}. */
export function drawSalesChart(svg, series) {
  const amounts = series?.amounts ?? [];
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  svg.replaceChildren();
  svg.dataset.buckets = String(amounts.length);
  svg.dataset.total = String(amounts.reduce((a, b) => a + b, 0));
  const innerW = WIDTH - PAD.left - PAD.right;
  const innerH = HEIGHT - PAD.top - PAD.bottom;
  svg.append(
    node("line", {
      x1: PAD.left,
      x2: WIDTH - PAD.right,
      y1: HEIGHT - PAD.bottom,
      y2: HEIGHT - PAD.bottom,
      class: "chart-axis",
    }),
  );
  if (!amounts.length) {
    svg.append(
      node("text", { x: WIDTH / 2, y: HEIGHT / 2, class: "chart-empty" }, "No sales yet today"),
    );
    return;
  }
  const max = Math.max(...amounts, 1);
  let running = 0;
  const total = amounts.reduce((a, b) => a + b, 0);
  const step = innerW / Math.max(amounts.length, SLOTS_MIN);
  const points = [];
  amounts.forEach((amount, i) => {
    const barH = (amount / max) * innerH;
    const x = PAD.left + i * step;
    if (amount > 0) {
      const bar = node("rect", {
        x: x + step * 0.12,
        y: HEIGHT - PAD.bottom - barH,
        width: Math.max(1, step * 0.76),
        height: barH,
        rx: Math.min(3, step / 4),
        class: "chart-bar",
      });
      const from = series.start_ms + i * series.bucket_ms;
      bar.append(node("title", {}, `${formatTime(from)}: ${formatYuan(amount)}`));
      svg.append(bar);
    }
    running += amount;
    points.push(`${x + step},${HEIGHT - PAD.bottom - (running / total) * innerH}`);
  });
  svg.append(
    node("polyline", {
      points: `${PAD.left},${HEIGHT - PAD.bottom} ${points.join(" ")}`,
      class: "chart-total",
    }),
  );
  const end = series.start_ms + Math.max(amounts.length, SLOTS_MIN) * series.bucket_ms;
  svg.append(
    node("text", { x: PAD.left, y: HEIGHT - 5, class: "chart-label" }, formatTime(series.start_ms)),
    node(
      "text",
      { x: WIDTH - PAD.right, y: HEIGHT - 5, class: "chart-label chart-label-end" },
      formatTime(end),
    ),
    node(
      "text",
      { x: PAD.left, y: PAD.top - 3, class: "chart-label" },
      `peak ${formatYuan(max)} / ${series.bucket_ms / 60000} min`,
    ),
  );
}
