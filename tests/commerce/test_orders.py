"""Placing orders and everything that follows, as plain values (commerce/orders.py).

The core returns plans; `Shop` below is a few dozen lines that apply a plan the way the
store contract in commerce/plan.py reads (every guard first, then every write), so a
test can ask what a plan would do to stock, limits and money without any store.
DESIGN.md "Money and stock: invariants" is what the assertions quote.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Final, assert_never

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from commerce import ledger
from commerce.catalog import Branch, CashbackFunder, Sku, StockLevel, Terms
from commerce.events import OrderEvent
from commerce.fulfillment import Coordinates
from commerce.ids import Amount, BranchId, MerchantId, OrderId, ProductId, RateBp, ShopperId, SkuId
from commerce.orders import (
    TRANSITIONS,
    Action,
    FulfillmentKind,
    Line,
    Order,
    OrderingView,
    OrderState,
    PlaceOrder,
    Planned,
    awaits_pickup,
    cancel,
    collect,
    deliver,
    expire,
    mark_ready,
    next_state,
    pick_up,
    place_order,
    refund,
    ship,
)
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
)
from commerce.pricing import Offer

PICKUP, DELIVERY = FulfillmentKind.PICKUP, FulfillmentKind.DELIVERY
S, A = OrderState, Action

NOW_MS: Final = 1_750_000_000_000
MERCHANT: Final = MerchantId("m_brand")
RIVAL: Final = MerchantId("m_rival")
SHOPPER: Final = ShopperId("u_ling")
ORDER: Final = OrderId("o_first")
CODE: Final = "482913"


def a_branch(name: str, lng: float, *, is_open: bool = True) -> Branch:
    # Every branch sits on latitude 31.2, so distance orders exactly as longitude does.
    return Branch(
        id=BranchId(f"b_{name}"), merchant=MERCHANT, name=name, lat=31.2, lng=lng, is_open=is_open
    )


def a_sku(name: str, price: int, merchant: MerchantId = MERCHANT) -> Sku:
    return Sku(
        id=SkuId(f"k_{name}"),
        product=ProductId(f"p_{name}"),
        merchant=merchant,
        name=name,
        price=Amount(price),
    )


XUHUI = a_branch("xuhui", 121.44)  # the room every test order is placed in
JINGAN = a_branch("jingan", 121.46)
PUDONG = a_branch("pudong", 121.54)
BRANCHES: Final = (XUHUI, JINGAN, PUDONG)
HOME = Coordinates(31.2, 121.55)  # a delivery address, nearest to PUDONG, then JINGAN, XUHUI

TEA = a_sku("tea", 1999)
CAKE = a_sku("cake", 3500)
RIVAL_TEA = a_sku("rivaltea", 999, RIVAL)
SKUS: Final = {s.id: s for s in (TEA, CAKE, RIVAL_TEA)}

TERMS = Terms(
    commission_rate_bp=RateBp(1000),
    cashback_rate_bp=RateBp(200),
    cashback_funder=CashbackFunder.SELLING_BRANCH,
    pickup_hold_s=1800,
    idempotency_keep_s=30 * 3600,
)
FLASH_ENDS_MS: Final = NOW_MS + 60_000
CAKE_FLASH = Offer(sku=CAKE.id, price=Amount(2800), ends_at_ms=FLASH_ENDS_MS, limit_per_shopper=3)


def plenty() -> dict[tuple[BranchId, SkuId], int]:
    return {(b.id, s.id): 10 for b in BRANCHES for s in (TEA, CAKE)}


def a_view(
    *,
    selling: Branch = XUHUI,
    branches: tuple[Branch, ...] = BRANCHES,
    offers: Mapping[SkuId, Offer] | None = None,
    available: Mapping[tuple[BranchId, SkuId], int] | None = None,
    bought: Mapping[SkuId, int] | None = None,
    terms: Terms = TERMS,
) -> OrderingView:
    return OrderingView(
        terms=terms,
        selling=selling,
        branches=branches,
        skus=SKUS,
        offers={} if offers is None else offers,
        available=plenty() if available is None else available,
        bought={} if bought is None else bought,
    )


def a_command(
    *lines: tuple[Sku, int],
    fulfillment: FulfillmentKind = PICKUP,
    stored_value: int = 0,
    destination: Coordinates | None = None,
    room: Branch = XUHUI,
) -> PlaceOrder:
    delivery = fulfillment is DELIVERY
    return PlaceOrder(
        order=ORDER,
        merchant=MERCHANT,
        branch=room.id,
        shopper=SHOPPER,
        lines=tuple((sku.id, qty) for sku, qty in (lines or ((TEA, 2),))),
        fulfillment=fulfillment,
        stored_value=Amount(stored_value),
        key="key-1",
        body_digest="digest-1",
        pickup_code=CODE,
        destination=(destination or HOME) if delivery else None,
        address="88 Century Ave" if delivery else "",
    )


def planned(result: Planned | Refusal) -> Planned:
    assert isinstance(result, Planned), result
    return result


def refused(result: Planned | Refusal) -> Refusal:
    assert isinstance(result, Refusal), result
    return result


def an_order(
    kind: FulfillmentKind = PICKUP,
    state: OrderState = S.PLACED,
    *,
    stored_value: int = 2000,
    cashback: int = 0,
    funder: CashbackFunder = CashbackFunder.HQ,
    ship_from: Branch | None = None,
) -> Order:
    """An order of 2 x 1500 + 1 x 2000 = 5000, sold in XUHUI's room."""
    pickup = kind is PICKUP
    return Order(
        id=ORDER,
        merchant=MERCHANT,
        branch=XUHUI.id,
        shopper=SHOPPER,
        lines=(Line(TEA.id, 2, Amount(1500)), Line(CAKE.id, 1, Amount(2000))),
        fulfillment=kind,
        ship_from=(ship_from or (XUHUI if pickup else PUDONG)).id,
        total=Amount(5000),
        stored_value_part=Amount(stored_value),
        commission_rate_bp=RateBp(1000),
        cashback_rate_bp=RateBp(200),
        cashback_funder=funder,
        state=state,
        placed_at_ms=NOW_MS,
        updated_at_ms=NOW_MS,
        pickup_code=CODE if pickup else None,
        expires_at_ms=NOW_MS + 1_800_000 if pickup else None,
        address="" if pickup else "88 Century Ave",
        cashback=Amount(cashback),
    )


def tail(after: Order, at_ms: int) -> tuple[PutOrder, AckFulfillment, AppendOutbox]:
    """What every transition plan ends with: the record, the queue entry done, the event."""
    event = OrderEvent(
        order=after.id,
        selling=after.branch,
        ship_from=after.ship_from,
        shopper=after.shopper,
        state=after.state,
        at_ms=at_ms,
    )
    return (PutOrder(after), AckFulfillment(after.ship_from, after.id), AppendOutbox(event))


# -- a store in a few lines: the plan contract, applied to dicts -------------------------


@dataclass
class Shop:
    """Applies a plan whole or not at all: every guard in order, then every write."""

    now_ms: int = NOW_MS
    stock: dict[tuple[BranchId, SkuId], Counter[str]] = field(default_factory=dict)
    bought: Counter[tuple[ShopperId, SkuId]] = field(default_factory=Counter)
    holds: dict[tuple[ShopperId, OrderId], int] = field(default_factory=dict)
    transfers: list[ledger.Transfer] = field(default_factory=list)
    orders: dict[OrderId, Order] = field(default_factory=dict)
    keys: set[tuple[ShopperId, str]] = field(default_factory=set)
    expiries: dict[OrderId, int] = field(default_factory=dict)
    queues: dict[BranchId, list[OrderId]] = field(default_factory=dict)
    events: list[OrderEvent] = field(default_factory=list)

    def level(self, branch: BranchId, sku: SkuId) -> Counter[str]:
        return self.stock.setdefault((branch, sku), Counter())

    def spendable(self, shopper: ShopperId) -> int:
        held = sum(n for (s, _), n in self.holds.items() if s == shopper)
        return ledger.balances(self.transfers)[ledger.stored_value(shopper)] - held

    def failing(self, guard: Guard) -> Reason | None:
        match guard:
            case KeyUnseen(shopper, key, _):
                ok = (shopper, key) not in self.keys
                reason = Reason.KEY_REUSED
            case StockAtLeast(branch, sku, qty):
                ok = self.level(branch, sku)["available"] >= qty
                reason = Reason.SOLD_OUT
            case BalanceAtLeast(shopper, amount):
                ok = self.spendable(shopper) >= amount
                reason = Reason.INSUFFICIENT_BALANCE
            case BoughtAtMost(shopper, sku, qty):
                ok = self.bought[(shopper, sku)] <= qty
                reason = Reason.OVER_LIMIT
            case OrderInState(order, state):
                ok = order in self.orders and self.orders[order].state is state
                reason = Reason.NOT_ALLOWED_IN_STATE
            case BeforeTime(deadline_ms, reason):
                ok = self.now_ms < deadline_ms
            case NotBeforeTime(due_ms, reason):
                ok = self.now_ms >= due_ms
            case _:
                assert_never(guard)
        return None if ok else reason

    def apply(self, plan: Plan) -> Reason | None:
        for guard in plan.guards:
            if (reason := self.failing(guard)) is not None:
                return reason
        for write in plan.writes:
            match write:
                case MoveStock(branch, sku, qty, move):
                    self.move(self.level(branch, sku), qty, move)
                case HoldStoredValue(shopper, order, amount):
                    assert (shopper, order) not in self.holds, "one hold per order"
                    self.holds[(shopper, order)] = amount
                case ReleaseHold(shopper, order, amount):
                    assert self.holds.pop((shopper, order)) == amount, "releases what it held"
                case PostTransfer(transfer):
                    assert all(t.id != transfer.id for t in self.transfers), "one per id"
                    self.transfers.append(transfer)
                case CountBought(shopper, sku, qty):
                    self.bought[(shopper, sku)] += qty
                case PutOrder(order):
                    self.orders[order.id] = order
                case RememberKey(shopper, key, _, _, _):
                    self.keys.add((shopper, key))
                case AttributeCustomer():
                    pass
                case ScheduleExpiry(order, due_ms):
                    self.expiries[order] = due_ms
                case CancelExpiry(order):
                    self.expiries.pop(order, None)
                case EnqueueFulfillment(branch, order):
                    self.queues.setdefault(branch, []).append(order)
                case AckFulfillment(branch, order):
                    queue = self.queues.get(branch, [])
                    if order in queue:
                        queue.remove(order)
                case AppendOutbox(event):
                    self.events.append(event)
                case _:
                    assert_never(write)
        return None

    @staticmethod
    def move(level: Counter[str], qty: int, move: StockMove) -> None:
        source, target = {
            StockMove.RECEIVE: ("", "available"),
            StockMove.RESERVE: ("available", "reserved"),
            StockMove.RELEASE: ("reserved", "available"),
            StockMove.SELL: ("reserved", "sold"),
            StockMove.RETURN: ("sold", "available"),
        }[move]
        if source:
            level[source] -= qty
        else:
            level["received"] += qty
        level[target] += qty


def a_shop(available: Mapping[tuple[BranchId, SkuId], int]) -> Shop:
    shop = Shop()
    for (branch, sku), qty in available.items():
        Shop.move(shop.level(branch, sku), qty, StockMove.RECEIVE)
    return shop


# -- placing a pickup order -------------------------------------------------------------


def test_a_pickup_order_reserves_at_the_selling_branch_and_holds_its_stored_value() -> None:
    cmd = a_command((TEA, 2), (CAKE, 1), stored_value=1500)
    result = planned(place_order(cmd, a_view(), NOW_MS))
    order = result.order
    assert result.plan.writes == (
        MoveStock(XUHUI.id, TEA.id, 2, StockMove.RESERVE),
        MoveStock(XUHUI.id, CAKE.id, 1, StockMove.RESERVE),
        CountBought(SHOPPER, TEA.id, 2),
        CountBought(SHOPPER, CAKE.id, 1),
        HoldStoredValue(SHOPPER, ORDER, Amount(1500)),
        PutOrder(order),
        RememberKey(SHOPPER, "key-1", "digest-1", ORDER, NOW_MS + 30 * 3600 * 1000),
        AttributeCustomer(SHOPPER, XUHUI.id, NOW_MS),
        ScheduleExpiry(ORDER, NOW_MS + 1800 * 1000),
        EnqueueFulfillment(XUHUI.id, ORDER),
        AppendOutbox(
            OrderEvent(
                order=ORDER,
                selling=XUHUI.id,
                ship_from=XUHUI.id,
                shopper=SHOPPER,
                state=S.PLACED,
                at_ms=NOW_MS,
            )
        ),
    )


def test_a_placed_pickup_order_records_its_room_code_expiry_and_terms() -> None:
    cmd = a_command((TEA, 2), (CAKE, 1), stored_value=1500)
    order = planned(place_order(cmd, a_view(), NOW_MS)).order
    assert order == Order(
        id=ORDER,
        merchant=MERCHANT,
        branch=XUHUI.id,
        shopper=SHOPPER,
        lines=(Line(TEA.id, 2, Amount(1999)), Line(CAKE.id, 1, Amount(3500))),
        fulfillment=PICKUP,
        ship_from=XUHUI.id,
        total=Amount(2 * 1999 + 3500),
        stored_value_part=Amount(1500),
        commission_rate_bp=RateBp(1000),
        cashback_rate_bp=RateBp(200),
        cashback_funder=CashbackFunder.SELLING_BRANCH,
        state=S.PLACED,
        placed_at_ms=NOW_MS,
        updated_at_ms=NOW_MS,
        pickup_code=CODE,
        expires_at_ms=NOW_MS + 1_800_000,
        address="",
        cashback=Amount(0),
    )
    assert order.cash_part == 2 * 1999 + 3500 - 1500


def test_pickup_guards_come_in_precedence_order_key_time_limit_stock_balance() -> None:
    cmd = a_command((CAKE, 2), stored_value=100)
    result = planned(place_order(cmd, a_view(offers={CAKE.id: CAKE_FLASH}), NOW_MS))
    assert result.plan.guards == (
        KeyUnseen(SHOPPER, "key-1", "digest-1"),
        BeforeTime(FLASH_ENDS_MS, Reason.FLASH_ENDED),
        BoughtAtMost(SHOPPER, CAKE.id, 3 - 2),
        StockAtLeast(XUHUI.id, CAKE.id, 2),
        BalanceAtLeast(SHOPPER, Amount(100)),
    )


def test_guards_of_a_multi_line_order_are_grouped_by_reason_precedence() -> None:
    # commerce/plan.py: "the first that fails decides the refusal, so operations list
    # them in the precedence of their Reasons". If line 0 is over its limit and line 1's
    # flash sale has ended, the store must answer FLASH_ENDED, not OVER_LIMIT.
    tea_flash = Offer(sku=TEA.id, price=Amount(1500), ends_at_ms=NOW_MS + 5, limit_per_shopper=4)
    cmd = a_command((TEA, 1), (CAKE, 1))
    offers = {TEA.id: tea_flash, CAKE.id: CAKE_FLASH}
    result = planned(place_order(cmd, a_view(offers=offers), NOW_MS))
    assert [type(g) for g in result.plan.guards] == [
        KeyUnseen,
        BeforeTime,
        BeforeTime,
        BoughtAtMost,
        BoughtAtMost,
        StockAtLeast,
        StockAtLeast,
    ]


def test_an_order_without_stored_value_neither_guards_nor_holds_a_balance() -> None:
    plan = planned(place_order(a_command((TEA, 1)), a_view(), NOW_MS)).plan
    assert not any(isinstance(g, BalanceAtLeast) for g in plan.guards)
    assert not any(isinstance(w, HoldStoredValue) for w in plan.writes)


def test_a_list_price_sku_gets_no_deadline_and_no_limit_guard() -> None:
    plan = planned(place_order(a_command((TEA, 3)), a_view(), NOW_MS)).plan
    assert plan.guards == (
        KeyUnseen(SHOPPER, "key-1", "digest-1"),
        StockAtLeast(XUHUI.id, TEA.id, 3),
    )


def test_an_offer_without_an_end_or_limit_sets_the_price_and_nothing_else() -> None:
    offer = Offer(sku=TEA.id, price=Amount(1000))
    result = planned(place_order(a_command((TEA, 3)), a_view(offers={TEA.id: offer}), NOW_MS))
    assert result.order.lines == (Line(TEA.id, 3, Amount(1000)),)
    assert result.plan.guards == (
        KeyUnseen(SHOPPER, "key-1", "digest-1"),
        StockAtLeast(XUHUI.id, TEA.id, 3),
    )


@pytest.mark.parametrize("now_ms", [NOW_MS, FLASH_ENDS_MS - 1])
def test_the_flash_price_is_charged_while_the_offer_runs(now_ms: int) -> None:
    cmd = a_command((CAKE, 2), (TEA, 1))
    order = planned(place_order(cmd, a_view(offers={CAKE.id: CAKE_FLASH}), now_ms)).order
    assert order.lines == (Line(CAKE.id, 2, Amount(2800)), Line(TEA.id, 1, Amount(1999)))
    assert order.total == 2 * 2800 + 1999


def test_totals_are_integer_minor_units_summed_over_every_line() -> None:
    cmd = a_command((TEA, 3), (CAKE, 2), stored_value=1)
    order = planned(place_order(cmd, a_view(), NOW_MS)).order
    assert order.total == 3 * 1999 + 2 * 3500 == 12997
    assert type(order.total) is int
    assert [line.amount for line in order.lines] == [5997, 7000]
    assert order.cash_part == 12996


def test_stored_value_may_pay_the_whole_total() -> None:
    order = planned(place_order(a_command((TEA, 1), stored_value=1999), a_view(), NOW_MS)).order
    assert order.stored_value_part == 1999
    assert order.cash_part == 0


def test_the_limit_guard_leaves_room_for_this_order_alone() -> None:
    cmd = a_command((CAKE, 1))
    view = a_view(offers={CAKE.id: CAKE_FLASH}, bought={CAKE.id: 2})
    plan = planned(place_order(cmd, view, NOW_MS)).plan
    assert BoughtAtMost(SHOPPER, CAKE.id, 2) in plan.guards


# -- refusals, each with the field to blame ---------------------------------------------


def test_an_unknown_sku_is_refused_naming_its_line() -> None:
    cmd = replace(a_command((TEA, 1)), lines=((TEA.id, 1), (SkuId("k_nosuch"), 1)))
    assert place_order(cmd, a_view(), NOW_MS) == Refusal(Reason.UNKNOWN_SKU, field="lines[1].sku")


def test_another_merchants_sku_is_as_unknown_as_a_missing_one() -> None:
    cmd = a_command((TEA, 1), (RIVAL_TEA, 1))
    assert place_order(cmd, a_view(), NOW_MS) == Refusal(Reason.UNKNOWN_SKU, field="lines[1].sku")


def test_pickup_at_a_closed_branch_is_refused() -> None:
    closed = replace(XUHUI, is_open=False)
    result = place_order(a_command((TEA, 1)), a_view(selling=closed), NOW_MS)
    assert result == Refusal(Reason.BRANCH_CLOSED, field="fulfillment")


@pytest.mark.parametrize("now_ms", [FLASH_ENDS_MS, FLASH_ENDS_MS + 1, FLASH_ENDS_MS + 86_400_000])
def test_a_flash_sale_refuses_orders_at_and_after_its_end(now_ms: int) -> None:
    cmd = a_command((TEA, 1), (CAKE, 1))
    result = place_order(cmd, a_view(offers={CAKE.id: CAKE_FLASH}), now_ms)
    assert result == Refusal(Reason.FLASH_ENDED, field="lines[1].sku")


@pytest.mark.parametrize(("already", "qty"), [(0, 4), (2, 2), (3, 1)])
def test_buying_past_the_per_shopper_limit_is_refused(already: int, qty: int) -> None:
    cmd = a_command((TEA, 1), (CAKE, qty))
    view = a_view(offers={CAKE.id: CAKE_FLASH}, bought={CAKE.id: already})
    assert place_order(cmd, view, NOW_MS) == Refusal(Reason.OVER_LIMIT, field="lines[1].qty")


@pytest.mark.parametrize(("already", "qty"), [(0, 3), (2, 1)])
def test_buying_exactly_up_to_the_limit_is_allowed(already: int, qty: int) -> None:
    view = a_view(offers={CAKE.id: CAKE_FLASH}, bought={CAKE.id: already})
    plan = planned(place_order(a_command((CAKE, qty)), view, NOW_MS)).plan
    assert BoughtAtMost(SHOPPER, CAKE.id, 3 - qty) in plan.guards


def test_pickup_of_more_than_the_selling_branch_holds_is_sold_out() -> None:
    # Other branches' stock does not help a pickup: it is handed over in this store.
    available = {**plenty(), (XUHUI.id, CAKE.id): 1}
    result = place_order(a_command((TEA, 1), (CAKE, 2)), a_view(available=available), NOW_MS)
    assert result == Refusal(Reason.SOLD_OUT, field="lines[1].qty")


def test_a_sku_never_received_at_the_branch_is_sold_out() -> None:
    available = {k: v for k, v in plenty().items() if k != (XUHUI.id, TEA.id)}
    result = place_order(a_command((TEA, 1)), a_view(available=available), NOW_MS)
    assert result == Refusal(Reason.SOLD_OUT, field="lines[0].qty")


def test_stored_value_over_the_total_is_refused() -> None:
    result = place_order(a_command((TEA, 1), stored_value=2000), a_view(), NOW_MS)
    assert result == Refusal(Reason.STORED_VALUE_OVER_TOTAL, field="stored_value")


# -- repeated lines of one SKU -----------------------------------------------------------
#
# The HTTP edge refuses a SKU that appears twice, but the core states no such
# precondition: given repeated lines it must either treat them as their sum, refuse, or
# reject the shape outright (an assert, as it does for empty lines). It must never plan
# a limit overrun or a reservation the stock cannot cover.


def place_repeated(cmd: PlaceOrder, view: OrderingView) -> Planned | Refusal | None:
    """The core's answer, or None if it rejects the shape as a broken precondition."""
    try:
        return place_order(cmd, view, NOW_MS)
    except AssertionError:
        return None


def test_splitting_a_limited_sku_over_two_lines_does_not_lift_the_limit() -> None:
    # Limit 3, two lines of 2: the shopper must not end up with 4 bought.
    result = place_repeated(a_command((CAKE, 2), (CAKE, 2)), a_view(offers={CAKE.id: CAKE_FLASH}))
    if isinstance(result, Refusal):
        assert result.reason is Reason.OVER_LIMIT
    elif isinstance(result, Planned):
        shop = a_shop(plenty())
        assert shop.apply(result.plan) is not None or shop.bought[(SHOPPER, CAKE.id)] <= 3


def test_splitting_a_pickup_over_two_lines_cannot_reserve_more_than_is_available() -> None:
    # DESIGN.md: stock never goes below zero. Three on the shelf, two lines of two.
    available = {**plenty(), (XUHUI.id, TEA.id): 3}
    result = place_repeated(a_command((TEA, 2), (TEA, 2)), a_view(available=available))
    if isinstance(result, Refusal):
        assert result.reason is Reason.SOLD_OUT
    elif isinstance(result, Planned):
        shop = a_shop(available)
        refused_at_apply = shop.apply(result.plan) is not None
        assert refused_at_apply or shop.level(XUHUI.id, TEA.id)["available"] >= 0


def test_a_delivery_of_repeated_lines_ships_from_a_branch_holding_their_sum() -> None:
    # PUDONG is nearest but holds 3 of the 4 wanted; XUHUI holds 4.
    available = {(PUDONG.id, TEA.id): 3, (XUHUI.id, TEA.id): 4}
    cmd = a_command((TEA, 2), (TEA, 2), fulfillment=DELIVERY)
    result = place_repeated(cmd, a_view(available=available))
    if isinstance(result, Planned):
        assert result.order.ship_from == XUHUI.id


# -- delivery: the nearest open branch holding every line --------------------------------


def test_a_delivery_ships_from_the_nearest_branch_and_queues_it_there() -> None:
    cmd = a_command((TEA, 1), (CAKE, 1), fulfillment=DELIVERY, stored_value=500)
    result = planned(place_order(cmd, a_view(), NOW_MS))
    order = result.order
    assert (order.branch, order.ship_from) == (XUHUI.id, PUDONG.id)
    assert order.pickup_code is None
    assert order.expires_at_ms is None
    assert order.address == "88 Century Ave"
    guards, writes = result.plan.guards, result.plan.writes
    assert StockAtLeast(PUDONG.id, TEA.id, 1) in guards
    assert StockAtLeast(PUDONG.id, CAKE.id, 1) in guards
    assert MoveStock(PUDONG.id, TEA.id, 1, StockMove.RESERVE) in writes
    assert EnqueueFulfillment(PUDONG.id, ORDER) in writes
    assert AttributeCustomer(SHOPPER, XUHUI.id, NOW_MS) in writes  # the room's customer
    assert not any(isinstance(w, ScheduleExpiry) for w in writes)


def test_a_delivery_skips_a_nearer_branch_that_lacks_one_line() -> None:
    available = {**plenty(), (PUDONG.id, CAKE.id): 0}
    cmd = a_command((TEA, 1), (CAKE, 1), fulfillment=DELIVERY)
    order = planned(place_order(cmd, a_view(available=available), NOW_MS)).order
    assert order.ship_from == JINGAN.id


def test_a_delivery_skips_a_nearer_branch_that_is_closed() -> None:
    branches = (XUHUI, JINGAN, replace(PUDONG, is_open=False))
    cmd = a_command((TEA, 1), fulfillment=DELIVERY)
    order = planned(place_order(cmd, a_view(branches=branches), NOW_MS)).order
    assert order.ship_from == JINGAN.id


def test_a_delivery_tie_goes_to_the_selling_branch() -> None:
    twin = replace(PUDONG, id=BranchId("b_twin"), name="twin")
    selling = replace(XUHUI, lng=PUDONG.lng)  # as near as PUDONG and its twin
    cmd = a_command((TEA, 1), fulfillment=DELIVERY)
    available = {(b, TEA.id): 5 for b in (PUDONG.id, twin.id, selling.id)}
    view = a_view(selling=selling, branches=(PUDONG, twin, selling), available=available)
    assert planned(place_order(cmd, view, NOW_MS)).order.ship_from == selling.id


def test_a_delivery_from_a_closed_rooms_branch_ships_from_an_open_one() -> None:
    closed = replace(XUHUI, is_open=False)
    branches = (closed, JINGAN)
    cmd = a_command((TEA, 1), fulfillment=DELIVERY, destination=Coordinates(31.2, 121.44))
    order = planned(place_order(cmd, a_view(selling=closed, branches=branches), NOW_MS)).order
    assert (order.branch, order.ship_from) == (XUHUI.id, JINGAN.id)


def test_a_delivery_no_open_branch_can_fill_is_refused() -> None:
    available = {**plenty(), (PUDONG.id, CAKE.id): 0, (JINGAN.id, TEA.id): 0}
    branches = (replace(XUHUI, is_open=False), JINGAN, PUDONG)
    cmd = a_command((TEA, 1), (CAKE, 1), fulfillment=DELIVERY)
    result = place_order(cmd, a_view(branches=branches, available=available), NOW_MS)
    assert result == Refusal(Reason.NO_BRANCH_CAN_SHIP, field="fulfillment")


# -- the transition table -----------------------------------------------------------------

# Written out from the module docstring, not copied from TRANSITIONS, so a change to the
# table has to be a change to this test as well.
EXPECTED: Final = {
    (PICKUP, S.PLACED, A.MARK_READY): S.READY,
    (PICKUP, S.PLACED, A.PICK_UP): S.PICKED_UP,
    (PICKUP, S.PLACED, A.CANCEL): S.CANCELLED,
    (PICKUP, S.PLACED, A.EXPIRE): S.EXPIRED,
    (PICKUP, S.READY, A.PICK_UP): S.PICKED_UP,
    (PICKUP, S.READY, A.CANCEL): S.CANCELLED,
    (PICKUP, S.READY, A.EXPIRE): S.EXPIRED,
    (PICKUP, S.PICKED_UP, A.COLLECT): S.COMPLETED,
    (PICKUP, S.COMPLETED, A.REFUND): S.REFUNDED,
    (DELIVERY, S.PLACED, A.SHIP): S.SHIPPED,
    (DELIVERY, S.PLACED, A.CANCEL): S.CANCELLED,
    (DELIVERY, S.SHIPPED, A.DELIVER): S.DELIVERED,
    (DELIVERY, S.DELIVERED, A.COLLECT): S.COMPLETED,
    (DELIVERY, S.COMPLETED, A.REFUND): S.REFUNDED,
}


def perform(order: Order, action: Action, now_ms: int) -> Planned | Refusal:
    """Call the operation for `action` as a console or the sweeper would."""
    match action:
        case A.MARK_READY:
            return mark_ready(order, now_ms)
        case A.SHIP:
            return ship(order, now_ms)
        case A.PICK_UP:
            return pick_up(order, order.pickup_code or CODE, now_ms)
        case A.DELIVER:
            return deliver(order, now_ms)
        case A.COLLECT:
            return collect(order, now_ms)
        case A.CANCEL:
            return cancel(order, now_ms)
        case A.EXPIRE:
            return expire(order, now_ms)
        case A.REFUND:
            return refund(order, Amount(1_000_000), now_ms)
        case _:
            assert_never(action)


def test_the_transition_table_is_the_documented_lifecycle() -> None:
    table = {
        (kind, state, action): after
        for kind, states in TRANSITIONS.items()
        for state, actions in states.items()
        for action, after in actions.items()
    }
    assert table == EXPECTED


@pytest.mark.parametrize(
    ("kind", "state"), list(itertools.product(FulfillmentKind, OrderState)), ids=str
)
def test_an_order_awaits_pickup_exactly_when_the_counter_may_hand_it_over(
    kind: FulfillmentKind, state: OrderState
) -> None:
    order = an_order(kind, state)
    expected = kind is PICKUP and state in (S.PLACED, S.READY)
    assert awaits_pickup(order) is expected
    assert awaits_pickup(order) is (EXPECTED.get((kind, state, Action.PICK_UP)) is not None)


@pytest.mark.parametrize(
    ("kind", "state", "action"),
    list(itertools.product(FulfillmentKind, OrderState, Action)),
    ids=lambda v: str(v),
)
def test_every_action_in_every_state_transitions_by_the_table_or_is_refused(
    kind: FulfillmentKind, state: OrderState, action: Action
) -> None:
    order = an_order(kind, state)
    at_ms = NOW_MS + 1_800_000  # the pickup hold has run out: expiry is due
    result = perform(order, action, at_ms)
    after_state = EXPECTED.get((kind, state, action))
    assert next_state(order, action) == after_state
    if after_state is None:
        assert isinstance(result, Refusal)
        assert result.reason is Reason.NOT_ALLOWED_IN_STATE
        return
    result = planned(result)
    after = replace(order, state=after_state, updated_at_ms=at_ms)
    if after_state is S.COMPLETED:
        after = replace(after, cashback=Amount(100))  # 2 % of 5000
    assert result.order == after
    assert result.plan.guards[0] == OrderInState(ORDER, state)
    assert result.plan.writes[-3:] == tail(after, at_ms)


def test_picking_up_with_the_wrong_code_is_refused() -> None:
    result = pick_up(an_order(PICKUP, S.READY), "000000", NOW_MS)
    assert result == Refusal(Reason.WRONG_PICKUP_CODE, field="code")


def test_a_wrong_code_on_an_order_not_waiting_for_pickup_is_not_allowed_in_state() -> None:
    result = refused(pick_up(an_order(PICKUP, S.CANCELLED), "000000", NOW_MS))
    assert result.reason is Reason.NOT_ALLOWED_IN_STATE


def test_a_refusal_for_the_state_says_which_action_and_state() -> None:
    result = refused(ship(an_order(PICKUP, S.PLACED), NOW_MS))
    assert result.field is None
    assert "ship" in result.detail
    assert "placed" in result.detail


def test_marking_ready_and_shipping_only_change_the_state() -> None:
    for result in (
        mark_ready(an_order(PICKUP, S.PLACED), NOW_MS),
        ship(an_order(DELIVERY, S.PLACED), NOW_MS),
    ):
        plan = planned(result).plan
        assert plan.guards == (OrderInState(ORDER, S.PLACED),)
        assert plan.writes == tail(planned(result).order, NOW_MS)


# -- handover and payment ------------------------------------------------------------------


def test_a_pickup_sells_the_reserved_units_and_cancels_the_expiry() -> None:
    order = an_order(PICKUP, S.READY)
    result = planned(pick_up(order, CODE, NOW_MS + 5))
    assert result.order.state is S.PICKED_UP
    assert result.plan.guards == (OrderInState(ORDER, S.READY),)
    assert result.plan.writes == (
        MoveStock(XUHUI.id, TEA.id, 2, StockMove.SELL),
        MoveStock(XUHUI.id, CAKE.id, 1, StockMove.SELL),
        CancelExpiry(ORDER),
        *tail(result.order, NOW_MS + 5),
    )


def test_a_delivery_sells_the_units_at_the_fulfilling_branch() -> None:
    result = planned(deliver(an_order(DELIVERY, S.SHIPPED), NOW_MS))
    assert result.order.state is S.DELIVERED
    assert result.plan.writes == (
        MoveStock(PUDONG.id, TEA.id, 2, StockMove.SELL),
        MoveStock(PUDONG.id, CAKE.id, 1, StockMove.SELL),
        *tail(result.order, NOW_MS),
    )


def payment_writes(order: Order, cashback: int, at_ms: int) -> list[PostTransfer]:
    transfers = ledger.payment_transfers(order.payment, at_ms)
    transfers += ledger.cashback_transfer(
        order.payment, Amount(cashback), order.cashback_expense_account, at_ms
    )
    return [PostTransfer(t) for t in transfers]


@pytest.mark.parametrize(
    ("kind", "state", "action"),
    [(PICKUP, S.PLACED, A.PICK_UP), (PICKUP, S.READY, A.PICK_UP), (DELIVERY, S.SHIPPED, A.DELIVER)],
)
def test_an_order_without_a_cash_part_completes_at_handover(
    kind: FulfillmentKind, state: OrderState, action: Action
) -> None:
    order = an_order(kind, state, stored_value=5000)
    result = planned(perform(order, action, NOW_MS))
    assert result.order.state is S.COMPLETED
    assert result.order.cashback == 100
    sells = [MoveStock(order.ship_from, line.sku, line.qty, StockMove.SELL) for line in order.lines]
    expiry = [CancelExpiry(ORDER)] if kind is PICKUP else []
    assert list(result.plan.writes) == [
        *sells,
        *expiry,
        ReleaseHold(SHOPPER, ORDER, Amount(5000)),
        *payment_writes(order, 100, NOW_MS),
        *tail(result.order, NOW_MS),
    ]
    codes = [w.transfer.code for w in result.plan.writes if isinstance(w, PostTransfer)]
    assert codes == [
        ledger.Code.STORED_VALUE_PAYMENT,
        ledger.Code.COMMISSION_ON_STORED_VALUE,
        ledger.Code.CASHBACK,
    ]


def test_collecting_posts_the_hold_the_payment_and_the_cashback() -> None:
    # 5000 = 2000 stored value + 3000 cash; 10 % commission: 300 on cash, 200 on the rest.
    order = an_order(PICKUP, S.PICKED_UP, stored_value=2000)
    result = planned(collect(order, NOW_MS + 9))
    assert result.order.state is S.COMPLETED
    assert result.order.cashback == 100
    assert result.plan.guards == (OrderInState(ORDER, S.PICKED_UP),)

    def posting(code: ledger.Code, debit: str, credit: str, amount: int) -> PostTransfer:
        return PostTransfer(
            ledger.Transfer(
                id=f"{ORDER}:{code}",
                debit=debit,
                credit=credit,
                amount=Amount(amount),
                code=code,
                at_ms=NOW_MS + 9,
                order=ORDER,
                branch=XUHUI.id,
            )
        )

    sale = ledger.revenue(XUHUI.id)
    assert result.plan.writes == (
        ReleaseHold(SHOPPER, ORDER, Amount(2000)),
        posting(ledger.Code.STORED_VALUE_PAYMENT, ledger.stored_value(SHOPPER), sale, 2000),
        posting(ledger.Code.CASH_PAYMENT, ledger.cash(XUHUI.id), sale, 3000),
        posting(ledger.Code.COMMISSION_ON_STORED_VALUE, sale, ledger.COMMISSION, 200),
        posting(ledger.Code.COMMISSION_ON_CASH, sale, ledger.COMMISSION, 300),
        posting(ledger.Code.CASHBACK, ledger.HQ_CASHBACK, ledger.stored_value(SHOPPER), 100),
        *tail(result.order, NOW_MS + 9),
    )


def test_collecting_an_order_without_stored_value_releases_no_hold() -> None:
    result = planned(collect(an_order(DELIVERY, S.DELIVERED, stored_value=0), NOW_MS))
    assert not any(isinstance(w, ReleaseHold) for w in result.plan.writes)
    cash = next(w.transfer for w in result.plan.writes if isinstance(w, PostTransfer))
    assert (cash.code, cash.debit, cash.amount) == (
        ledger.Code.CASH_PAYMENT,
        ledger.cash(PUDONG.id),  # the fulfilling branch's till took it at the door
        5000,
    )
    assert cash.credit == ledger.revenue(XUHUI.id)  # the sale is the room's


def test_cashback_funded_by_the_selling_branch_is_its_expense() -> None:
    order = an_order(DELIVERY, S.DELIVERED, funder=CashbackFunder.SELLING_BRANCH)
    result = planned(collect(order, NOW_MS))
    cashback = [
        w.transfer
        for w in result.plan.writes
        if isinstance(w, PostTransfer) and w.transfer.code is ledger.Code.CASHBACK
    ]
    assert [(t.debit, t.credit, t.amount) for t in cashback] == [
        (ledger.branch_cashback(XUHUI.id), ledger.stored_value(SHOPPER), 100)
    ]


# -- cancel and expiry ---------------------------------------------------------------------


@pytest.mark.parametrize("state", [S.PLACED, S.READY])
def test_cancelling_a_pickup_releases_stock_hold_limit_and_expiry(state: OrderState) -> None:
    result = planned(cancel(an_order(PICKUP, state), NOW_MS))
    assert result.order.state is S.CANCELLED
    assert result.plan.guards == (OrderInState(ORDER, state),)
    assert result.plan.writes == (
        MoveStock(XUHUI.id, TEA.id, 2, StockMove.RELEASE),
        MoveStock(XUHUI.id, CAKE.id, 1, StockMove.RELEASE),
        CountBought(SHOPPER, TEA.id, -2),
        CountBought(SHOPPER, CAKE.id, -1),
        ReleaseHold(SHOPPER, ORDER, Amount(2000)),
        CancelExpiry(ORDER),
        *tail(result.order, NOW_MS),
    )


def test_cancelling_a_delivery_releases_at_the_fulfilling_branch() -> None:
    result = planned(cancel(an_order(DELIVERY, S.PLACED, stored_value=0), NOW_MS))
    assert result.plan.writes == (
        MoveStock(PUDONG.id, TEA.id, 2, StockMove.RELEASE),
        MoveStock(PUDONG.id, CAKE.id, 1, StockMove.RELEASE),
        CountBought(SHOPPER, TEA.id, -2),
        CountBought(SHOPPER, CAKE.id, -1),
        *tail(result.order, NOW_MS),
    )


@pytest.mark.parametrize("early_ms", [1, 1_000, 1_800_000])
def test_an_order_is_not_expired_before_its_hold_runs_out(early_ms: int) -> None:
    order = an_order(PICKUP, S.PLACED)
    assert order.expires_at_ms is not None
    result = expire(order, order.expires_at_ms - early_ms)
    assert result == Refusal(Reason.NOT_EXPIRED)


@pytest.mark.parametrize("late_ms", [0, 1, 3_600_000])
def test_expiry_releases_everything_and_guards_the_store_clock(late_ms: int) -> None:
    order = an_order(PICKUP, S.READY)
    assert order.expires_at_ms is not None
    at_ms = order.expires_at_ms + late_ms
    result = planned(expire(order, at_ms))
    assert result.order.state is S.EXPIRED
    assert result.plan.guards == (
        OrderInState(ORDER, S.READY),
        NotBeforeTime(order.expires_at_ms, Reason.NOT_EXPIRED),
    )
    assert result.plan.writes == (
        MoveStock(XUHUI.id, TEA.id, 2, StockMove.RELEASE),
        MoveStock(XUHUI.id, CAKE.id, 1, StockMove.RELEASE),
        CountBought(SHOPPER, TEA.id, -2),
        CountBought(SHOPPER, CAKE.id, -1),
        ReleaseHold(SHOPPER, ORDER, Amount(2000)),
        CancelExpiry(ORDER),
        *tail(result.order, at_ms),
    )


# -- refunds -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored_value", "spendable", "balance_guard"),
    [
        (2000, 0, None),  # the refunded stored value covers the whole clawback
        (0, 100, 100),  # cashback unspent: taken back from the balance, guarded
        (0, 30, 30),  # partly spent: what is left is taken back, the rest withheld
        (0, 0, None),  # fully spent: nothing to take back, all withheld from cash
        (60, 500, 40),  # the refund brings back 60 of the 100 clawed back
    ],
)
def test_a_refund_returns_stock_reverses_money_and_guards_only_a_clawback_beyond_it(
    stored_value: int, spendable: int, balance_guard: int | None
) -> None:
    order = an_order(DELIVERY, S.COMPLETED, stored_value=stored_value, cashback=100)
    result = planned(refund(order, Amount(spendable), NOW_MS + 7))
    reversal = ledger.refund_transfers(
        order.payment, Amount(100), ledger.HQ_CASHBACK, Amount(spendable), NOW_MS + 7
    )
    assert result.order.state is S.REFUNDED
    expected_guards: list[Guard] = [OrderInState(ORDER, S.COMPLETED)]
    if balance_guard is not None:
        expected_guards.append(BalanceAtLeast(SHOPPER, Amount(balance_guard)))
    assert list(result.plan.guards) == expected_guards
    assert result.plan.writes == (
        MoveStock(PUDONG.id, TEA.id, 2, StockMove.RETURN),
        MoveStock(PUDONG.id, CAKE.id, 1, StockMove.RETURN),
        CountBought(SHOPPER, TEA.id, -2),
        CountBought(SHOPPER, CAKE.id, -1),
        *(PostTransfer(t) for t in reversal.transfers),
        *tail(result.order, NOW_MS + 7),
    )
    assert reversal.transfers  # the money part is never empty for a paid order


def test_a_refund_claws_back_from_the_branch_that_funded_the_cashback() -> None:
    order = an_order(
        PICKUP, S.COMPLETED, stored_value=0, cashback=100, funder=CashbackFunder.SELLING_BRANCH
    )
    result = planned(refund(order, Amount(100), NOW_MS))
    clawback = [
        w.transfer
        for w in result.plan.writes
        if isinstance(w, PostTransfer) and w.transfer.code is ledger.Code.CASHBACK_CLAWBACK
    ]
    assert [(t.debit, t.credit, t.amount) for t in clawback] == [
        (ledger.stored_value(SHOPPER), ledger.branch_cashback(XUHUI.id), 100)
    ]


# -- one order's whole life, applied ------------------------------------------------------


def test_a_pickup_order_walked_through_its_life_leaves_stock_and_money_in_place() -> None:
    stock = {(XUHUI.id, TEA.id): 5}
    shop = a_shop(stock)
    top_up = ledger.top_up_transfer("top-up", SHOPPER, Amount(1000), NOW_MS)
    assert shop.apply(Plan((), (PostTransfer(top_up),))) is None
    cmd = a_command((TEA, 2), stored_value=1000)  # 3998 = 1000 stored value + 2998 cash
    assert shop.apply(planned(place_order(cmd, a_view(available=stock), NOW_MS)).plan) is None
    tea = shop.level(XUHUI.id, TEA.id)
    assert (tea["available"], tea["reserved"], tea["sold"]) == (3, 2, 0)
    assert shop.spendable(SHOPPER) == 0  # held, not yet spent
    assert shop.queues[XUHUI.id] == [ORDER]

    assert shop.apply(planned(pick_up(shop.orders[ORDER], CODE, NOW_MS + 60_000)).plan) is None
    assert shop.apply(planned(collect(shop.orders[ORDER], NOW_MS + 61_000)).plan) is None
    assert shop.orders[ORDER].state is S.COMPLETED
    assert (tea["available"], tea["reserved"], tea["sold"]) == (3, 0, 2)
    assert shop.holds == {}
    assert shop.expiries == {}
    assert shop.queues[XUHUI.id] == []
    books = ledger.balances(shop.transfers)
    assert books[ledger.COMMISSION] == 400  # 399.8 rounded half up
    assert books[ledger.revenue(XUHUI.id)] == 3998 - 400
    assert books[ledger.stored_value(SHOPPER)] == 80  # 2 % cashback of 3998 = 79.96
    assert books[ledger.branch_cashback(XUHUI.id)] == -80

    spendable = Amount(shop.spendable(SHOPPER))
    assert shop.apply(planned(refund(shop.orders[ORDER], spendable, NOW_MS + 90_000)).plan) is None
    assert (tea["available"], tea["reserved"], tea["sold"]) == (5, 0, 0)
    books = ledger.balances(shop.transfers)
    assert books[ledger.COMMISSION] == books[ledger.revenue(XUHUI.id)] == 0
    assert books[ledger.branch_cashback(XUHUI.id)] == 0
    assert books[ledger.stored_value(SHOPPER)] == 1000  # the top-up, whole again
    assert shop.bought[(SHOPPER, TEA.id)] == 0
    assert [e.state for e in shop.events] == [S.PLACED, S.PICKED_UP, S.COMPLETED, S.REFUNDED]


# -- stock levels ----------------------------------------------------------------------------


def test_a_stock_level_must_add_up_to_what_was_received() -> None:
    assert StockLevel(received=10, available=4, reserved=3, sold=3).received == 10
    with pytest.raises(AssertionError):
        StockLevel(received=10, available=4, reserved=3, sold=2)
    with pytest.raises(AssertionError):
        StockLevel(received=0, available=1, reserved=-1, sold=0)


# -- a whole shop over random sequences ----------------------------------------------------

RESERVING: Final = frozenset({S.PLACED, S.READY, S.SHIPPED})
SOLD: Final = frozenset({S.PICKED_UP, S.DELIVERED, S.COMPLETED})
UNPAID: Final = RESERVING | {S.PICKED_UP, S.DELIVERED}
COUNTED: Final = RESERVING | SOLD
SHOPPERS: Final = (SHOPPER, ShopperId("u_mei"))
ROOMS: Final = (XUHUI, JINGAN)
PLACES: Final = (HOME, Coordinates(31.2, 121.40), Coordinates(31.2, 121.47))
MACHINE_TERMS = replace(TERMS, cashback_rate_bp=RateBp(500), cashback_funder=CashbackFunder.HQ)


class OrderLifecycle(RuleBasedStateMachine):
    """Orders placed and pushed through every action in random order, with time passing.

    After every step: stock adds up and matches the orders, no shopper's stored value is
    below what it holds, the books balance, and each branch's revenue is exactly what its
    completed orders earned it.
    """

    @initialize()
    def open_the_shop(self) -> None:
        self.shop = a_shop({(b.id, s.id): 6 for b in BRANCHES for s in (TEA, CAKE)})
        self.serial = 0
        self.spent_elsewhere = 0
        self.offers = {CAKE.id: replace(CAKE_FLASH, ends_at_ms=NOW_MS + 3_600_000)}
        self.branches = (XUHUI, JINGAN, replace(PUDONG, is_open=False))
        for n, shopper in enumerate(SHOPPERS):
            top_up = ledger.top_up_transfer(f"top-up-{n}", shopper, Amount(2500), NOW_MS)
            assert self.shop.apply(Plan((), (PostTransfer(top_up),))) is None

    @rule(
        shopper=st.sampled_from(SHOPPERS),
        room=st.sampled_from(ROOMS),
        lines=st.lists(
            st.tuples(st.sampled_from((TEA, CAKE)), st.integers(1, 3)),
            min_size=1,
            max_size=2,
            unique_by=lambda line: line[0].id,
        ),
        fulfillment=st.sampled_from(FulfillmentKind),
        destination=st.sampled_from(PLACES),
        stored_value_pct=st.sampled_from((0, 30, 100)),
    )
    def place(
        self,
        shopper: ShopperId,
        room: Branch,
        lines: list[tuple[Sku, int]],
        fulfillment: FulfillmentKind,
        destination: Coordinates,
        stored_value_pct: int,
    ) -> None:
        shop = self.shop
        self.serial += 1
        prices = {TEA.id: TEA.price, CAKE.id: self.offers[CAKE.id].price}
        total = sum(prices[sku.id] * qty for sku, qty in lines)
        cmd = replace(
            a_command(*lines, fulfillment=fulfillment, destination=destination, room=room),
            order=OrderId(f"o_{self.serial}"),
            shopper=shopper,
            key=f"key-{self.serial}",
            stored_value=Amount(total * stored_value_pct // 100),
        )
        view = OrderingView(
            terms=MACHINE_TERMS,
            selling=room,
            branches=self.branches,
            skus=SKUS,
            offers=self.offers,
            available={k: level["available"] for k, level in shop.stock.items()},
            bought={sku: n for (s, sku), n in shop.bought.items() if s == shopper},
        )
        result = place_order(cmd, view, shop.now_ms)
        if isinstance(result, Refusal):
            allowed = {Reason.FLASH_ENDED, Reason.OVER_LIMIT, Reason.SOLD_OUT}
            assert result.reason in allowed | {Reason.NO_BRANCH_CAN_SHIP}
            return
        # The view is fresh, so only the balance (which the core does not read) may refuse.
        assert shop.apply(result.plan) in (None, Reason.INSUFFICIENT_BALANCE)

    @rule(pick=st.integers(0, 10_000), choice=st.integers(0, 10_000))
    def act(self, pick: int, choice: int) -> None:
        """An action the table allows for the order; the pure refusals get their own rule."""
        shop = self.shop
        if not shop.orders:
            return
        order = shop.orders[sorted(shop.orders)[pick % len(shop.orders)]]
        allowed = sorted(TRANSITIONS[order.fulfillment].get(order.state, {}))
        if not allowed:
            return
        action = allowed[choice % len(allowed)]
        if action is A.REFUND:
            result = refund(order, Amount(shop.spendable(order.shopper)), shop.now_ms)
        else:
            result = perform(order, action, shop.now_ms)
        if action is A.EXPIRE and isinstance(result, Refusal):
            assert order.expires_at_ms is not None
            assert result.reason is Reason.NOT_EXPIRED
            assert shop.now_ms < order.expires_at_ms
            return
        assert shop.apply(planned(result).plan) is None  # planned from the current order

    @rule(pick=st.integers(0, 10_000), spend_first=st.booleans())
    def push_forward(self, pick: int, spend_first: bool) -> None:
        """The next step towards completion (or the refund after it), never cancel or expiry.

        Before a refund the shopper may have spent everything, cashback included.
        """
        shop = self.shop
        if not shop.orders:
            return
        order = shop.orders[sorted(shop.orders)[-1 - pick % min(3, len(shop.orders))]]
        forward = sorted(
            set(TRANSITIONS[order.fulfillment].get(order.state, {})) - {A.CANCEL, A.EXPIRE}
        )
        if not forward:
            return
        if forward[0] is A.REFUND:
            if spend_first:
                self.spend_the_rest_elsewhere(order.shopper)
            result = refund(order, Amount(shop.spendable(order.shopper)), shop.now_ms)
        else:
            result = perform(order, forward[0], shop.now_ms)
        assert shop.apply(planned(result).plan) is None

    @rule(pick=st.integers(0, 10_000), action=st.sampled_from(Action))
    def act_out_of_turn(self, pick: int, action: Action) -> None:
        shop = self.shop
        if not shop.orders:
            return
        order = shop.orders[sorted(shop.orders)[pick % len(shop.orders)]]
        if next_state(order, action) is None:
            assert (
                refused(perform(order, action, shop.now_ms)).reason is Reason.NOT_ALLOWED_IN_STATE
            )

    @rule(shopper=st.sampled_from(SHOPPERS))
    def spend_the_rest_elsewhere(self, shopper: ShopperId) -> None:
        """Spend all spendable stored value outside these orders (cashback included)."""
        amount = self.shop.spendable(shopper)
        if amount <= 0:
            return
        self.serial += 1
        spent = ledger.Transfer(
            id=f"spend-{self.serial}",
            debit=ledger.stored_value(shopper),
            credit=ledger.revenue(PUDONG.id),
            amount=Amount(amount),
            code=ledger.Code.STORED_VALUE_PAYMENT,
            at_ms=self.shop.now_ms,
        )
        assert self.shop.apply(Plan((), (PostTransfer(spent),))) is None
        self.spent_elsewhere += amount

    @rule(minutes=st.integers(1, 45))
    def wait(self, minutes: int) -> None:
        self.shop.now_ms += minutes * 60_000

    @rule()
    def sweep(self) -> None:
        shop = self.shop
        for order_id, due_ms in sorted(shop.expiries.items()):
            if due_ms <= shop.now_ms:
                assert shop.apply(planned(expire(shop.orders[order_id], shop.now_ms)).plan) is None

    @invariant()
    def stock_adds_up_and_matches_the_orders(self) -> None:
        shop = self.shop
        reserved: Counter[tuple[BranchId, SkuId]] = Counter()
        sold: Counter[tuple[BranchId, SkuId]] = Counter()
        for order in shop.orders.values():
            for line in order.lines:
                if order.state in RESERVING:
                    reserved[(order.ship_from, line.sku)] += line.qty
                elif order.state in SOLD:
                    sold[(order.ship_from, line.sku)] += line.qty
        for key, level in shop.stock.items():
            assert min(level.values(), default=0) >= 0, (key, level)
            assert level["available"] + level["reserved"] + level["sold"] == level["received"]
            assert level["reserved"] == reserved[key]
            assert level["sold"] == sold[key]

    @invariant()
    def limits_count_what_each_shopper_keeps(self) -> None:
        counted: Counter[tuple[ShopperId, SkuId]] = Counter()
        for order in self.shop.orders.values():
            if order.state in COUNTED:
                for line in order.lines:
                    counted[(order.shopper, line.sku)] += line.qty
        bought = {k: n for k, n in self.shop.bought.items() if n != 0}
        assert bought == dict(counted)
        assert all(counted[(s, CAKE.id)] <= 3 for s in SHOPPERS)

    @invariant()
    def stored_value_is_held_for_unpaid_orders_and_never_overdrawn(self) -> None:
        shop = self.shop
        holds = {
            (o.shopper, o.id): o.stored_value_part
            for o in shop.orders.values()
            if o.state in UNPAID and o.stored_value_part
        }
        assert shop.holds == holds
        assert all(shop.spendable(s) >= 0 for s in SHOPPERS)

    @invariant()
    def the_books_balance_and_revenue_is_what_completed_orders_earned(self) -> None:
        shop = self.shop
        totals = ledger.balances(shop.transfers)
        assert sum(totals.values()) == 0
        revenue: Counter[str] = Counter()
        commission = cashback = 0
        for o in shop.orders.values():
            if o.state is S.COMPLETED:
                c = ledger.half_up(o.total, o.commission_rate_bp)
                revenue[ledger.revenue(o.branch)] += o.total - c
                commission += c
                cashback += o.cashback
        revenue[ledger.revenue(PUDONG.id)] += self.spent_elsewhere
        for branch in BRANCHES:
            assert totals[ledger.revenue(branch.id)] == revenue[ledger.revenue(branch.id)]
        assert totals[ledger.COMMISSION] == commission
        assert totals[ledger.HQ_CASHBACK] == -cashback


def test_stock_limits_holds_and_books_stay_consistent_over_any_sequence() -> None:
    run_state_machine_as_test(
        OrderLifecycle,
        settings=settings(
            max_examples=80,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
