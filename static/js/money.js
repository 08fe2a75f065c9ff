// Amounts are integers in fen (the minor unit); the pages show and read yuan with 2 decimals.
// No float arithmetic on amounts: yuan text is parsed digit by digit.

const grouping = new Intl.NumberFormat("en", { maximumFractionDigits: 0 });

/** 123456 -> "¥1,234.56"; -5 -> "-¥0.05". */
export function formatYuan(minor) {
  const n = Math.trunc(Number(minor) || 0);
  const abs = Math.abs(n);
  const cents = String(abs % 100).padStart(2, "0");
  return `${n < 0 ? "-" : ""}¥${grouping.format(Math.floor(abs / 100))}.${cents}`;
}

/** "12.3" / "12.30" / "¥12" -> 1230 / 1230 / 1200; null if it is not an amount. */
export function parseYuan(text) {
  const match = /^\s*¥?\s*(\d{1,9})(?:\.(\d{0,2}))?\s*$/.exec(String(text ?? ""));
  if (!match) return null;
  const [, yuan, cents = ""] = match;
  return Number(yuan) * 100 + Number(cents.padEnd(2, "0"));
}

/** Fen as the text of a yuan input: 990 -> "9.90". */
export function yuanInput(minor) {
  return formatYuan(minor).replace("¥", "").replaceAll(",", "");
}

/** Milliseconds left as a countdown: "4:05", "1:02:03". */
export function formatCountdown(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}
