// HQ's catalog and stock: every SKU's units available per branch, stock receipts per
// branch, and new products with their variants ("name | price" per line).

import { ApiError, api } from "./api.js";
import { h, say } from "./dom.js";
import { formatYuan, parseYuan } from "./money.js";

const $ = (id) => document.getElementById(id);
const VARIANTS_MAX = 50;

export class HqCatalog {
  constructor(merchant) {
    this.base = `/api/merchants/${encodeURIComponent(merchant)}`;
    this.branches = [];
    this.skus = [];
    $("receipt-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.receive();
    });
    $("product-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.addProduct();
    });
  }

  setBranches(branches) {
    this.branches = branches;
    const select = $("receipt-branch");
    const chosen = select.value;
    select.replaceChildren(...branches.map((b) => new Option(b.name, b.id)));
    if (branches.some((b) => b.id === chosen)) select.value = chosen;
    this.load();
  }

  async load() {
    const [{ skus }, { stock }] = await Promise.all([
      api(`${this.base}/catalog`),
      api(`${this.base}/stock`),
    ]);
    this.skus = skus;
    const levels = new Map(stock.map((s) => [`${s.branch} ${s.sku}`, s]));
    $("stock-head").replaceChildren(
      h(
        "tr",
        {},
        h("th", { scope: "col" }, "Product"),
        h("th", { scope: "col", className: "num" }, "Price"),
        ...this.branches.map((b) => h("th", { scope: "col", className: "num" }, b.name)),
        h("th", { scope: "col", className: "num" }, "All"),
      ),
    );
    const rows = skus.map((sku) => {
      let total = 0;
      const cells = this.branches.map((b) => {
        const level = levels.get(`${b.id} ${sku.id}`);
        total += level?.available ?? 0;
        const title = level ? `${level.reserved} reserved, ${level.sold} sold` : "none received";
        return h("td", { className: "num", title }, String(level?.available ?? 0));
      });
      const live = sku.offer && sku.offer.price !== sku.price;
      return h(
        "tr",
        { dataset: { sku: sku.id } },
        h("td", {}, sku.name),
        h("td", { className: "num" }, formatYuan(live ? sku.offer.price : sku.price)),
        ...cells,
        h("td", { className: "num" }, h("strong", {}, String(total))),
      );
    });
    if (!rows.length) {
      rows.push(h("tr", {}, h("td", { colSpan: 3 + this.branches.length, className: "muted" }, "No products yet.")));
    }
    $("stock").replaceChildren(...rows);
    const select = $("receipt-sku");
    const chosen = select.value;
    select.replaceChildren(...skus.map((sku) => new Option(sku.name, sku.id)));
    if (skus.some((s) => s.id === chosen)) select.value = chosen;
  }

  async receive() {
    const qty = Number($("receipt-qty").value);
    const body = { sku: $("receipt-sku").value, branch: $("receipt-branch").value, qty };
    if (!body.sku || !body.branch) {
      say($("receipt-message"), "Add a product and a branch first.");
      return;
    }
    if (!Number.isInteger(qty) || qty < 1) {
      say($("receipt-message"), "Units are a whole number, 1 or more.");
      $("receipt-qty").focus();
      return;
    }
    try {
      const receipt = await api(`${this.base}/stock-receipts`, { method: "POST", body });
      $("receipt-qty").value = "";
      say($("receipt-message"), `Received: ${receipt.available} now available there.`, "info");
      await this.load();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      say($("receipt-message"), `Could not receive the stock: ${error.message}`);
    }
  }

  async addProduct() {
    const name = $("product-name").value.trim();
    const lines = $("product-skus").value.split("\n").map((l) => l.trim()).filter(Boolean);
    if (!name) {
      say($("product-message"), "Enter the product's name.");
      $("product-name").focus();
      return;
    }
    if (!lines.length || lines.length > VARIANTS_MAX) {
      say($("product-message"), `List 1 to ${VARIANTS_MAX} variants, one per line: name | price.`);
      $("product-skus").focus();
      return;
    }
    const skus = [];
    for (const line of lines) {
      const [variant, priceText] = line.split("|").map((part) => part.trim());
      const price = parseYuan(priceText);
      if (!variant || price === null) {
        say($("product-message"), `“${line}” should look like: 250 g tin | 68.00`);
        $("product-skus").focus();
        return;
      }
      skus.push({ name: variant, price });
    }
    try {
      const product = await api(`${this.base}/products`, { method: "POST", body: { name, skus } });
      $("product-name").value = "";
      $("product-skus").value = "";
      say($("product-message"), `Added ${product.name} with ${product.skus.length} variant(s).`, "info");
      await this.load();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      say($("product-message"), `Could not add the product: ${error.message}`);
    }
  }
}
