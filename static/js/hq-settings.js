// HQ's terms (commission and cashback rates, who pays cashback, the pickup hold) and
// staff accounts (franchisees for one branch, other HQ operators).

import { ApiError, api } from "./api.js";
import { say } from "./dom.js";
import { parseYuan, yuanInput } from "./money.js";

const $ = (id) => document.getElementById(id);
// Basis points are percent × 100: the same two-decimal integer arithmetic as fen.
const parsePercent = (text) => parseYuan(String(text).replace("%", ""));
const percentText = (bp) => yuanInput(bp);

export class HqSettings {
  constructor(merchant) {
    this.base = `/api/merchants/${encodeURIComponent(merchant)}`;
    $("terms-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.saveTerms();
    });
    $("staff-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.createStaff();
    });
    $("staff-role").addEventListener("change", () => {
      $("staff-branch").disabled = $("staff-role").value !== "franchisee";
    });
  }

  setBranches(branches) {
    $("staff-branch").replaceChildren(...branches.map((b) => new Option(b.name, b.id)));
  }

  async loadTerms() {
    const terms = await api(`${this.base}/terms`);
    $("commission").value = percentText(terms.commission_rate_bp);
    $("cashback").value = percentText(terms.cashback_rate_bp);
    $("funder").value = terms.cashback_funder;
    $("hold").value = String(Math.round((terms.pickup_hold_s / 3600) * 100) / 100);
  }

  async saveTerms() {
    const commission = parsePercent($("commission").value);
    const cashback = parsePercent($("cashback").value);
    const hours = Number($("hold").value);
    for (const [value, id] of [[commission, "commission"], [cashback, "cashback"]]) {
      if (value === null || value > 10000) {
        say($("terms-message"), "Rates are percentages from 0 to 100, like 8 or 2.5.");
        $(id).focus();
        return;
      }
    }
    if (!Number.isFinite(hours) || hours <= 0) {
      say($("terms-message"), "The pickup hold is a number of hours, like 2.");
      $("hold").focus();
      return;
    }
    const body = {
      commission_rate_bp: commission,
      cashback_rate_bp: cashback,
      cashback_funder: $("funder").value,
      pickup_hold_s: Math.round(hours * 3600),
    };
    try {
      await api(`${this.base}/terms`, { method: "PUT", body });
      say($("terms-message"), "Saved. New orders use these terms.", "info");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      say($("terms-message"), `Could not save: ${error.message}`);
    }
  }

  async createStaff() {
    const role = $("staff-role").value;
    const body = {
      username: $("staff-username").value.trim(),
      password: $("staff-password").value,
      role,
    };
    if (role === "franchisee") body.branch = $("staff-branch").value;
    try {
      await api(`${this.base}/users`, { method: "POST", body });
      $("staff-username").value = "";
      $("staff-password").value = "";
      say($("staff-message"), `Created ${body.username}. They sign in at /signin.`, "info");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      say($("staff-message"), `Could not create the account: ${error.message}`);
    }
  }
}
