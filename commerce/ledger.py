"""Double-entry ledger: accounts, immutable transfers, and the postings of each money event.

Follows TigerBeetle's model: a transfer moves one amount from a debit account to a
credit account, is immutable and unique by id (an id says which order and why), and
a correction is a new transfer. A shopper's stored value is held (pending) when an
order is placed and posted here when the order is paid (DESIGN.md "Money and stock").

Balances are credits minus debits. Stored value is a liability of the merchant to the
shopper (held by HQ, spendable at any branch): its balance must never go below zero,
which plans guard with `BalanceAtLeast`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Final

from commerce.ids import Amount, BranchId, OrderId, RateBp, ShopperId
from commerce.values import value

BP: Final = 10_000

CLEARING: Final = "clearing"  # external payments (online, top-ups)
COMMISSION: Final = "commission"  # HQ's commission income
HQ_CASHBACK: Final = "cashback:hq"  # cashback expense when HQ funds it


def stored_value(shopper: ShopperId) -> str:
    return f"sv:{shopper}"


def cash(branch: BranchId) -> str:
    return f"cash:{branch}"


def revenue(branch: BranchId) -> str:
    return f"revenue:{branch}"


def branch_cashback(branch: BranchId) -> str:
    return f"cashback:{branch}"


class Code(StrEnum):
    """Why money moved (TigerBeetle's `code`)."""

    TOP_UP = "top_up"
    STORED_VALUE_PAYMENT = "sv_payment"
    CASH_PAYMENT = "cash_payment"
    COMMISSION_ON_STORED_VALUE = "commission_sv"
    COMMISSION_ON_CASH = "commission_cash"
    CASHBACK = "cashback"
    REFUND_STORED_VALUE = "refund_sv"
    REFUND_CASH = "refund_cash"
    REFUND_COMMISSION_ON_STORED_VALUE = "refund_commission_sv"
    REFUND_COMMISSION_ON_CASH = "refund_commission_cash"
    CASHBACK_CLAWBACK = "cashback_clawback"
    CASHBACK_WITHHELD = "cashback_withheld"  # spent cashback deducted from a cash refund


@value(kw_only=True)
class Transfer:
    id: str  # unique: "<order>:<code>" or the top-up's own id
    debit: str
    credit: str
    amount: Amount
    code: Code
    at_ms: int
    order: OrderId | None = None
    branch: BranchId | None = None  # the selling branch, for statements

    def __post_init__(self) -> None:
        assert self.amount > 0, "a transfer moves a positive amount"
        assert self.debit != self.credit


def half_up(amount: int, rate_bp: RateBp) -> Amount:
    """amount * rate, rounded half up to the minor unit (integer arithmetic only)."""
    return Amount((amount * rate_bp + BP // 2) // BP)


@value
class Commission:
    """HQ's commission on an order of total T = V + E, split by how it was paid.

    c = round(T·r) half up; the cash part is round(E·r) and the stored-value part is
    the rest, so the parts always sum to c and HQ's and the branch's shares to T.
    """

    on_stored_value: Amount
    on_cash: Amount

    @property
    def total(self) -> Amount:
        return Amount(self.on_stored_value + self.on_cash)


def commission(stored_value_part: Amount, cash_part: Amount, rate_bp: RateBp) -> Commission:
    total = half_up(stored_value_part + cash_part, rate_bp)
    on_cash = half_up(cash_part, rate_bp)
    return Commission(Amount(total - on_cash), on_cash)


@value(kw_only=True)
class Payment:
    """The money facts of one order, enough to post it and to reverse it."""

    order: OrderId
    shopper: ShopperId
    selling: BranchId
    fulfilling: BranchId
    stored_value_part: Amount
    cash_part: Amount
    commission_rate_bp: RateBp


def _transfers(*candidates: Transfer | None) -> tuple[Transfer, ...]:
    return tuple(t for t in candidates if t is not None)


def _transfer(
    p: Payment, code: Code, debit: str, credit: str, amount: int, at_ms: int
) -> Transfer | None:
    if amount <= 0:
        return None
    return Transfer(
        id=f"{p.order}:{code}",
        debit=debit,
        credit=credit,
        amount=Amount(amount),
        code=code,
        at_ms=at_ms,
        order=p.order,
        branch=p.selling,
    )


def payment_transfers(p: Payment, at_ms: int) -> tuple[Transfer, ...]:
    """Posting an order's payment: stored value (the hold, posted) and cash at handover
    credit the selling branch; HQ's commission is debited from it."""
    c = commission(p.stored_value_part, p.cash_part, p.commission_rate_bp)
    sale = revenue(p.selling)
    return _transfers(
        _transfer(
            p, Code.STORED_VALUE_PAYMENT, stored_value(p.shopper), sale, p.stored_value_part, at_ms
        ),
        _transfer(p, Code.CASH_PAYMENT, cash(p.fulfilling), sale, p.cash_part, at_ms),
        _transfer(p, Code.COMMISSION_ON_STORED_VALUE, sale, COMMISSION, c.on_stored_value, at_ms),
        _transfer(p, Code.COMMISSION_ON_CASH, sale, COMMISSION, c.on_cash, at_ms),
    )


def cashback_transfer(p: Payment, amount: Amount, expense: str, at_ms: int) -> tuple[Transfer, ...]:
    """Cashback on completion: credited to the shopper's stored value."""
    return _transfers(_transfer(p, Code.CASHBACK, expense, stored_value(p.shopper), amount, at_ms))


@value
class Refund:
    transfers: tuple[Transfer, ...]
    cash_refunded: Amount
    stored_value_refunded: Amount
    cashback_clawed_back: Amount
    cashback_withheld: Amount  # spent cashback deducted from the cash refund


def refund_transfers(
    p: Payment,
    cashback_paid: Amount,
    cashback_expense: str,
    spendable_stored_value: Amount,
    at_ms: int,
) -> Refund:
    """Reverse every posting of a paid order.

    Cashback already spent cannot be taken back from a balance: the clawback takes what
    the shopper's stored value holds (after the stored-value part comes back) and the
    rest is withheld from the cash refund.
    """
    c = commission(p.stored_value_part, p.cash_part, p.commission_rate_bp)
    clawback = Amount(min(cashback_paid, spendable_stored_value + p.stored_value_part))
    withheld = Amount(cashback_paid - clawback)
    assert withheld <= p.cash_part, "cashback rates are at most 100 %"
    sale, sv = revenue(p.selling), stored_value(p.shopper)
    transfers = _transfers(
        _transfer(
            p, Code.REFUND_COMMISSION_ON_STORED_VALUE, COMMISSION, sale, c.on_stored_value, at_ms
        ),
        _transfer(p, Code.REFUND_COMMISSION_ON_CASH, COMMISSION, sale, c.on_cash, at_ms),
        _transfer(p, Code.REFUND_STORED_VALUE, sale, sv, p.stored_value_part, at_ms),
        _transfer(p, Code.REFUND_CASH, sale, cash(p.fulfilling), p.cash_part - withheld, at_ms),
        _transfer(p, Code.CASHBACK_WITHHELD, sale, cashback_expense, withheld, at_ms),
        _transfer(p, Code.CASHBACK_CLAWBACK, sv, cashback_expense, clawback, at_ms),
    )
    return Refund(
        transfers, Amount(p.cash_part - withheld), p.stored_value_part, clawback, withheld
    )


def top_up_transfer(transfer_id: str, shopper: ShopperId, amount: Amount, at_ms: int) -> Transfer:
    """Stored value bought with an external payment (recorded by HQ)."""
    return Transfer(
        id=transfer_id,
        debit=CLEARING,
        credit=stored_value(shopper),
        amount=amount,
        code=Code.TOP_UP,
        at_ms=at_ms,
    )


def balances(transfers: Iterable[Transfer]) -> Counter[str]:
    """Credits minus debits per account."""
    totals: Counter[str] = Counter()
    for t in transfers:
        totals[t.credit] += t.amount
        totals[t.debit] -= t.amount
    return totals


@value(kw_only=True)
class Statement:
    """A branch's money over a period (DESIGN.md: what HQ and the branch owe each other)."""

    branch: BranchId
    sales: Amount  # paid orders sold in this branch's room, less refunds
    commission: Amount  # HQ's share of those sales
    cashback_cost: Amount  # cashback this branch funds (0 when HQ funds it)
    net: Amount  # sales - commission - cashback_cost
    stored_value_spent: Amount  # sales paid with stored value (HQ holds it)
    cash_collected: Amount  # what this branch's till took at handovers, less refunds
    hq_owes_branch: Amount
    branch_owes_hq: Amount


_SALE_CODES: Final = {
    Code.STORED_VALUE_PAYMENT: 1,
    Code.CASH_PAYMENT: 1,
    Code.REFUND_STORED_VALUE: -1,
    Code.REFUND_CASH: -1,
    Code.CASHBACK_WITHHELD: -1,
}


def statement(branch: BranchId, transfers: Sequence[Transfer]) -> Statement:
    """The statement of `branch` from the transfers of a period (any order, any branch)."""
    sales = commission_total = cashback_cost = sv_spent = 0
    own_cash_at_others = others_cash_here = till = 0
    sale, till_account = revenue(branch), cash(branch)
    own_cashback = branch_cashback(branch)
    for t in transfers:
        sign = _SALE_CODES.get(t.code, 0)
        if t.credit == sale or t.debit == sale:
            sales += sign * t.amount
            if t.code is Code.STORED_VALUE_PAYMENT:
                sv_spent += t.amount
            elif t.code is Code.REFUND_STORED_VALUE:
                sv_spent -= t.amount
            if t.credit == COMMISSION:
                commission_total += t.amount
            elif t.debit == COMMISSION:
                commission_total -= t.amount
        if own_cashback in (t.debit, t.credit):
            cashback_cost += t.amount if t.debit == own_cashback else -t.amount
        if till_account in (t.debit, t.credit):
            till += t.amount if t.debit == till_account else -t.amount
        if t.code in (Code.CASH_PAYMENT, Code.REFUND_CASH):
            sign = 1 if t.code is Code.CASH_PAYMENT else -1
            till_branch = t.debit if sign == 1 else t.credit
            if t.branch == branch and till_branch != till_account:
                own_cash_at_others += sign * t.amount
            elif t.branch != branch and till_branch == till_account:
                others_cash_here += sign * t.amount
    commission_on_cash = _commission_on_cash(branch, transfers)
    # Spent cashback kept back from a cash refund stays in this branch's till; the
    # stored value it was spent as is HQ's to make good, so the branch owes it to HQ.
    withheld = sum(
        t.amount for t in transfers if t.code is Code.CASHBACK_WITHHELD and t.debit == sale
    )
    # HQ holds stored value: it owes the branch what shoppers spent there less HQ's
    # commission on it, plus this branch's sales paid into other branches' tills.
    hq_owes = sv_spent - (commission_total - commission_on_cash) + own_cash_at_others
    branch_owes = commission_on_cash + cashback_cost + others_cash_here + withheld
    return Statement(
        branch=branch,
        sales=Amount(sales),
        commission=Amount(commission_total),
        cashback_cost=Amount(cashback_cost),
        net=Amount(sales - commission_total - cashback_cost),
        stored_value_spent=Amount(sv_spent),
        cash_collected=Amount(till),
        hq_owes_branch=Amount(hq_owes),
        branch_owes_hq=Amount(branch_owes),
    )


def _commission_on_cash(branch: BranchId, transfers: Sequence[Transfer]) -> int:
    sale = revenue(branch)
    total = 0
    for t in transfers:
        if t.code is Code.COMMISSION_ON_CASH and t.debit == sale:
            total += t.amount
        elif t.code is Code.REFUND_COMMISSION_ON_CASH and t.credit == sale:
            total -= t.amount
    return total
