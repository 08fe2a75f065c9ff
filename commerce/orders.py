"""Orders: the state machine as a table, and every operation as a plan.

Two rules (after h11's `_state.py`):
1. A transition not in `TRANSITIONS` for the order's fulfillment kind is refused with
   NOT_ALLOWED_IN_STATE; nothing else decides what may follow what.
2. Every plan that changes an order first guards `OrderInState(order, state)`, so two
   franchisees acting at once cannot both succeed on a stale view.

Lifecycle: a pickup order is placed (stock reserved at the selling branch, stored value
held), may be marked ready, is picked up by its code (stock sold), and completes when
paid (the hold is posted and the cash part collected at the counter); a delivery order
is shipped from the nearest branch holding every line, delivered, and completes when
paid. An order whose cash part is zero is paid at handover. Cashback is credited on
completion. Cancel and expiry release the reservation and the hold; a refund after
completion reverses every posting and returns the units to the shelf.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from enum import StrEnum
from typing import Final

from commerce import ledger
from commerce.catalog import Branch, CashbackFunder, Sku, Terms
from commerce.events import OrderEvent
from commerce.fulfillment import Coordinates, ship_from
from commerce.ids import Amount, BranchId, MerchantId, OrderId, RateBp, ShopperId, SkuId
from commerce.plan import (
    AckFulfillment,
    AppendOutbox,
    AttributeCustomer,
    BalanceAtLeast,
    BeforeTime,
    BoughtAtMost,
    CancelExpiry,
    CountBought,
    EnqueueFulfillment,
    Guard,
    HoldStoredValue,
    KeyUnseen,
    MoveStock,
    NotBeforeTime,
    OrderInState,
    Plan,
    PostTransfer,
    PutOrder,
    Reason,
    Refusal,
    ReleaseHold,
    RememberKey,
    ScheduleExpiry,
    StockAtLeast,
    StockMove,
    Write,
)
from commerce.pricing import Offer, unit_price
from commerce.values import value

LINES_MAX: Final = 50
QTY_MAX: Final = 999


class FulfillmentKind(StrEnum):
    PICKUP = "pickup"
    DELIVERY = "delivery"


class OrderState(StrEnum):
    PLACED = "placed"
    READY = "ready"  # pickup: packed and waiting at the counter
    SHIPPED = "shipped"
    PICKED_UP = "picked_up"  # handed over, cash part not yet confirmed
    DELIVERED = "delivered"  # handed over, cash part not yet confirmed
    COMPLETED = "completed"  # handed over and fully paid
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REFUNDED = "refunded"


class Action(StrEnum):
    MARK_READY = "mark_ready"
    SHIP = "ship"
    PICK_UP = "pick_up"
    DELIVER = "deliver"
    COLLECT = "collect"  # the franchisee confirms the cash part was paid
    CANCEL = "cancel"
    EXPIRE = "expire"
    REFUND = "refund"


S, A = OrderState, Action
TRANSITIONS: Final[dict[FulfillmentKind, dict[OrderState, dict[Action, OrderState]]]] = {
    FulfillmentKind.PICKUP: {
        S.PLACED: {
            A.MARK_READY: S.READY,
            A.PICK_UP: S.PICKED_UP,
            A.CANCEL: S.CANCELLED,
            A.EXPIRE: S.EXPIRED,
        },
        S.READY: {A.PICK_UP: S.PICKED_UP, A.CANCEL: S.CANCELLED, A.EXPIRE: S.EXPIRED},
        S.PICKED_UP: {A.COLLECT: S.COMPLETED},
        S.COMPLETED: {A.REFUND: S.REFUNDED},
    },
    FulfillmentKind.DELIVERY: {
        S.PLACED: {A.SHIP: S.SHIPPED, A.CANCEL: S.CANCELLED},
        S.SHIPPED: {A.DELIVER: S.DELIVERED},
        S.DELIVERED: {A.COLLECT: S.COMPLETED},
        S.COMPLETED: {A.REFUND: S.REFUNDED},
    },
}
OPEN_STATES: Final = frozenset({S.PLACED, S.READY, S.SHIPPED, S.PICKED_UP, S.DELIVERED})


@value
class Line:
    sku: SkuId
    qty: int
    unit_price: Amount

    @property
    def amount(self) -> Amount:
        return Amount(self.qty * self.unit_price)


@value(kw_only=True)
class Order:
    id: OrderId
    merchant: MerchantId
    branch: BranchId  # the selling branch: the room it was placed in
    shopper: ShopperId
    lines: tuple[Line, ...]
    fulfillment: FulfillmentKind
    ship_from: BranchId  # the fulfilling branch (the selling branch for pickup)
    total: Amount
    stored_value_part: Amount
    commission_rate_bp: RateBp  # terms are fixed when the order is placed
    cashback_rate_bp: RateBp
    cashback_funder: CashbackFunder
    state: OrderState
    placed_at_ms: int
    updated_at_ms: int
    pickup_code: str | None = None
    expires_at_ms: int | None = None
    address: str = ""
    cashback: Amount = Amount(0)  # credited on completion

    @property
    def cash_part(self) -> Amount:
        return Amount(self.total - self.stored_value_part)

    @property
    def payment(self) -> ledger.Payment:
        return ledger.Payment(
            order=self.id,
            shopper=self.shopper,
            selling=self.branch,
            fulfilling=self.ship_from,
            stored_value_part=self.stored_value_part,
            cash_part=self.cash_part,
            commission_rate_bp=self.commission_rate_bp,
        )

    @property
    def cashback_expense_account(self) -> str:
        if self.cashback_funder is CashbackFunder.SELLING_BRANCH:
            return ledger.branch_cashback(self.branch)
        return ledger.HQ_CASHBACK


@value
class Planned:
    """A plan and the order as it will be once the plan is applied."""

    plan: Plan
    order: Order


# -- placing --------------------------------------------------------------------------


@value(kw_only=True)
class PlaceOrder:
    """A shopper's purchase in a branch room; ids, code and digest are minted at the edge."""

    order: OrderId
    merchant: MerchantId
    branch: BranchId
    shopper: ShopperId
    lines: tuple[tuple[SkuId, int], ...]
    fulfillment: FulfillmentKind
    stored_value: Amount
    key: str
    body_digest: str
    pickup_code: str
    destination: Coordinates | None = None
    address: str = ""


@value(kw_only=True)
class OrderingView:
    """What the store reads for the core before planning (TigerBeetle's prefetch)."""

    terms: Terms
    selling: Branch
    branches: tuple[Branch, ...]  # every branch of the merchant
    skus: Mapping[SkuId, Sku]
    offers: Mapping[SkuId, Offer]
    available: Mapping[tuple[BranchId, SkuId], int]
    bought: Mapping[SkuId, int]  # by this shopper so far


def place_order(cmd: PlaceOrder, view: OrderingView, now_ms: int) -> Planned | Refusal:
    """Plan an order in a branch room.

    Refusals: UNKNOWN_SKU, BRANCH_CLOSED, FLASH_ENDED, OVER_LIMIT, SOLD_OUT,
    NO_BRANCH_CAN_SHIP, STORED_VALUE_OVER_TOTAL. Races (stock, limit, balance, key,
    flash end) are guards; the store refuses with the same reasons.
    """
    assert cmd.lines, "the edge validates the shape"
    assert len({sku for sku, _ in cmd.lines}) == len(cmd.lines), "one line per SKU"
    assert cmd.stored_value >= 0, "the edge validates signs"
    # Refusals and guards go in the precedence of their reasons (plan.py), whole
    # reason by reason across the lines, so the same order gets the same answer.
    skus: list[Sku] = []
    for i, (sku_id, _) in enumerate(cmd.lines):
        sku = view.skus.get(sku_id)
        if sku is None or sku.merchant != cmd.merchant:
            return Refusal(Reason.UNKNOWN_SKU, field=f"lines[{i}].sku")
        skus.append(sku)
    pickup = cmd.fulfillment is FulfillmentKind.PICKUP
    if pickup and not view.selling.is_open:
        return Refusal(Reason.BRANCH_CLOSED, field="fulfillment")
    lines: list[Line] = []
    time_guards: list[Guard] = []
    limit_guards: list[Guard] = []
    for i, (sku, (_, qty)) in enumerate(zip(skus, cmd.lines, strict=True)):
        offer = view.offers.get(sku.id)
        price = unit_price(sku, offer, now_ms)
        if price is None:
            return Refusal(Reason.FLASH_ENDED, field=f"lines[{i}].sku")
        if offer is not None and offer.ends_at_ms is not None:
            time_guards.append(BeforeTime(offer.ends_at_ms, Reason.FLASH_ENDED))
        lines.append(Line(sku.id, qty, price))
    for i, line in enumerate(lines):
        offer = view.offers.get(line.sku)
        if offer is not None and offer.limit_per_shopper is not None:
            if line.qty > offer.limit_per_shopper - view.bought.get(line.sku, 0):
                return Refusal(Reason.OVER_LIMIT, field=f"lines[{i}].qty")
            limit_guards.append(
                BoughtAtMost(cmd.shopper, line.sku, offer.limit_per_shopper - line.qty)
            )

    wanted = [(line.sku, line.qty) for line in lines]
    if pickup:
        source = view.selling
        for i, line in enumerate(lines):
            if view.available.get((view.selling.id, line.sku), 0) < line.qty:
                return Refusal(Reason.SOLD_OUT, field=f"lines[{i}].qty")
    else:
        assert cmd.destination is not None, "the edge requires coordinates for delivery"
        nearest = ship_from(view.selling, view.branches, wanted, view.available, cmd.destination)
        if nearest is None:
            return Refusal(Reason.NO_BRANCH_CAN_SHIP, field="fulfillment")
        source = nearest
    guards: list[Guard] = [KeyUnseen(cmd.shopper, cmd.key, cmd.body_digest)]
    guards += time_guards + limit_guards

    total = Amount(sum(line.amount for line in lines))
    if cmd.stored_value > total:
        return Refusal(Reason.STORED_VALUE_OVER_TOTAL, field="stored_value")
    for line in lines:
        guards.append(StockAtLeast(source.id, line.sku, line.qty))
    if cmd.stored_value:
        guards.append(BalanceAtLeast(cmd.shopper, cmd.stored_value))

    terms = view.terms
    order = Order(
        id=cmd.order,
        merchant=cmd.merchant,
        branch=cmd.branch,
        shopper=cmd.shopper,
        lines=tuple(lines),
        fulfillment=cmd.fulfillment,
        ship_from=source.id,
        total=total,
        stored_value_part=cmd.stored_value,
        commission_rate_bp=terms.commission_rate_bp,
        cashback_rate_bp=terms.cashback_rate_bp,
        cashback_funder=terms.cashback_funder,
        state=OrderState.PLACED,
        placed_at_ms=now_ms,
        updated_at_ms=now_ms,
        pickup_code=cmd.pickup_code if pickup else None,
        expires_at_ms=now_ms + terms.pickup_hold_s * 1000 if pickup else None,
        address=cmd.address,
    )
    writes: list[Write] = [MoveStock(source.id, sku, qty, StockMove.RESERVE) for sku, qty in wanted]
    writes += [CountBought(cmd.shopper, sku, qty) for sku, qty in wanted]
    if cmd.stored_value:
        writes.append(HoldStoredValue(cmd.shopper, cmd.order, cmd.stored_value))
    writes += [
        PutOrder(order),
        RememberKey(
            cmd.shopper,
            cmd.key,
            cmd.body_digest,
            cmd.order,
            now_ms + terms.idempotency_keep_s * 1000,
        ),
        AttributeCustomer(cmd.shopper, cmd.branch, now_ms),
    ]
    if order.expires_at_ms is not None:
        writes.append(ScheduleExpiry(cmd.order, order.expires_at_ms))
    writes += [EnqueueFulfillment(source.id, cmd.order), AppendOutbox(_event(order, now_ms))]
    return Planned(Plan(tuple(guards), tuple(writes)), order)


# -- what follows ---------------------------------------------------------------------


def next_state(order: Order, action: Action) -> OrderState | None:
    return TRANSITIONS[order.fulfillment].get(order.state, {}).get(action)


def awaits_pickup(order: Order) -> bool:
    """Whether the counter can hand `order` over against its code now: what the stores
    index by (fulfilling branch, pickup code)."""
    return order.pickup_code is not None and next_state(order, Action.PICK_UP) is not None


def mark_ready(order: Order, now_ms: int) -> Planned | Refusal:
    return _transition(order, Action.MARK_READY, now_ms, ())


def ship(order: Order, now_ms: int) -> Planned | Refusal:
    return _transition(order, Action.SHIP, now_ms, ())


def pick_up(order: Order, code: str, now_ms: int) -> Planned | Refusal:
    """Hand a pickup order over at the counter against its code."""
    if next_state(order, Action.PICK_UP) is None:
        return _not_allowed(order, Action.PICK_UP)
    if code != order.pickup_code:
        return Refusal(Reason.WRONG_PICKUP_CODE, field="code")
    return _hand_over(order, Action.PICK_UP, now_ms)


def deliver(order: Order, now_ms: int) -> Planned | Refusal:
    return _hand_over(order, Action.DELIVER, now_ms)


def collect(order: Order, now_ms: int) -> Planned | Refusal:
    """The franchisee confirms the cash part was paid: the order completes."""
    if next_state(order, Action.COLLECT) is None:
        return _not_allowed(order, Action.COLLECT)
    completed, writes = _completion(order, now_ms)
    return _planned(completed, (OrderInState(order.id, order.state),), writes, now_ms)


def cancel(order: Order, now_ms: int) -> Planned | Refusal:
    return _transition(order, Action.CANCEL, now_ms, _release(order))


def expire(order: Order, now_ms: int) -> Planned | Refusal:
    """Release an unpicked pickup order after its hold time (run by the sweeper)."""
    if next_state(order, Action.EXPIRE) is None:
        return _not_allowed(order, Action.EXPIRE)
    assert order.expires_at_ms is not None
    if now_ms < order.expires_at_ms:
        return Refusal(Reason.NOT_EXPIRED)
    planned = _transition(order, Action.EXPIRE, now_ms, _release(order))
    assert isinstance(planned, Planned)
    guard = NotBeforeTime(order.expires_at_ms, Reason.NOT_EXPIRED)
    return Planned(replace(planned.plan, guards=(*planned.plan.guards, guard)), planned.order)


def refund(order: Order, spendable_stored_value: Amount, now_ms: int) -> Planned | Refusal:
    """Reverse a completed order: money back, units back on the fulfilling branch's shelf.

    `spendable_stored_value` is the shopper's stored value less holds, as read; if the
    cashback clawback needs more than the refunded stored value brings back, a guard
    keeps the read true at apply time.
    """
    if next_state(order, Action.REFUND) is None:
        return _not_allowed(order, Action.REFUND)
    reversal = ledger.refund_transfers(
        order.payment,
        order.cashback,
        order.cashback_expense_account,
        spendable_stored_value,
        now_ms,
    )
    guards: list[Guard] = [OrderInState(order.id, order.state)]
    beyond_refund = reversal.cashback_clawed_back - order.stored_value_part
    if beyond_refund > 0:
        guards.append(BalanceAtLeast(order.shopper, Amount(beyond_refund)))
    writes: list[Write] = [
        MoveStock(order.ship_from, line.sku, line.qty, StockMove.RETURN) for line in order.lines
    ]
    writes += [CountBought(order.shopper, line.sku, -line.qty) for line in order.lines]
    writes += [PostTransfer(t) for t in reversal.transfers]
    refunded = replace(order, state=OrderState.REFUNDED, updated_at_ms=now_ms)
    return _planned(refunded, tuple(guards), tuple(writes), now_ms)


# -- parts ----------------------------------------------------------------------------


def _transition(
    order: Order, action: Action, now_ms: int, writes: tuple[Write, ...]
) -> Planned | Refusal:
    state = next_state(order, action)
    if state is None:
        return _not_allowed(order, action)
    after = replace(order, state=state, updated_at_ms=now_ms)
    return _planned(after, (OrderInState(order.id, order.state),), writes, now_ms)


def _hand_over(order: Order, action: Action, now_ms: int) -> Planned | Refusal:
    state = next_state(order, action)
    if state is None:
        return _not_allowed(order, action)
    writes: tuple[Write, ...] = tuple(
        MoveStock(order.ship_from, line.sku, line.qty, StockMove.SELL) for line in order.lines
    )
    if order.expires_at_ms is not None:
        writes += (CancelExpiry(order.id),)
    after = replace(order, state=state, updated_at_ms=now_ms)
    if order.cash_part == 0:  # nothing to collect: paid at handover
        after, completion = _completion(after, now_ms)
        writes += completion
    return _planned(after, (OrderInState(order.id, order.state),), writes, now_ms)


def _completion(order: Order, now_ms: int) -> tuple[Order, tuple[Write, ...]]:
    """Post the payment (the hold becomes a transfer) and credit the cashback."""
    cashback = ledger.half_up(order.total, order.cashback_rate_bp)
    writes: list[Write] = []
    if order.stored_value_part:
        writes.append(ReleaseHold(order.shopper, order.id, order.stored_value_part))
    transfers = ledger.payment_transfers(order.payment, now_ms)
    transfers += ledger.cashback_transfer(
        order.payment, cashback, order.cashback_expense_account, now_ms
    )
    writes += [PostTransfer(t) for t in transfers]
    completed = replace(order, state=OrderState.COMPLETED, cashback=cashback, updated_at_ms=now_ms)
    return completed, tuple(writes)


def _release(order: Order) -> tuple[Write, ...]:
    """What cancel and expiry give back: the reservation, the hold, the limit count."""
    writes: list[Write] = [
        MoveStock(order.ship_from, line.sku, line.qty, StockMove.RELEASE) for line in order.lines
    ]
    writes += [CountBought(order.shopper, line.sku, -line.qty) for line in order.lines]
    if order.stored_value_part:
        writes.append(ReleaseHold(order.shopper, order.id, order.stored_value_part))
    if order.expires_at_ms is not None:
        writes.append(CancelExpiry(order.id))
    return tuple(writes)


def _planned(
    after: Order, guards: tuple[Guard, ...], writes: tuple[Write, ...], now_ms: int
) -> Planned:
    # Any action on an order ends its queue entry: the branch has seen it.
    done = AckFulfillment(after.ship_from, after.id)
    plan = Plan(guards, (*writes, PutOrder(after), done, AppendOutbox(_event(after, now_ms))))
    return Planned(plan, after)


def _not_allowed(order: Order, action: Action) -> Refusal:
    return Refusal(
        Reason.NOT_ALLOWED_IN_STATE,
        detail=f"cannot {action} a {order.fulfillment} order that is {order.state}",
    )


def _event(order: Order, now_ms: int) -> OrderEvent:
    return OrderEvent(
        order=order.id,
        selling=order.branch,
        ship_from=order.ship_from,
        shopper=order.shopper,
        state=order.state,
        at_ms=now_ms,
    )
