"""Random sequences of purchases and what follows them, against each store adapter.

After every step the books must hold (DESIGN.md "Money and stock"): postings balance and
the stored balances are the sum of the stored transfers; no shopper's stored value is
below what it holds; every branch's stock adds up (sold + reserved + available =
received) and matches the orders: reserved = what open orders wait for, sold = what was
handed over and not refunded, held = the stored value of orders not yet paid.

Time guards use the store's own clock, so "overdue" orders are placed in the past
(their pickup hold already over) and the sweeper runs with the real clock.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import ClassVar, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from commerce import orders
from commerce.catalog import Terms
from commerce.ids import BranchId, OrderId, ShopperId, SkuId
from commerce.orders import Action, FulfillmentKind, Order, OrderState, Planned
from commerce.plan import Reason, Refusal
from streamserver.store.port import Applied, Store
from tests.contract.conftest import StoreFactory
from tests.contract.world import PICKUP_CODE, World, new_id, now_ms

T = TypeVar("T")

HOLD_S = 3600
RESERVING = frozenset({OrderState.PLACED, OrderState.READY, OrderState.SHIPPED})
SOLD = frozenset({OrderState.PICKED_UP, OrderState.DELIVERED, OrderState.COMPLETED})
HOLDING = RESERVING | {OrderState.PICKED_UP, OrderState.DELIVERED}

ACTIONS: dict[Action, Callable[[Order, int], Planned | Refusal]] = {
    Action.MARK_READY: orders.mark_ready,
    Action.SHIP: orders.ship,
    Action.PICK_UP: lambda order, now: orders.pick_up(order, PICKUP_CODE, now),
    Action.DELIVER: orders.deliver,
    Action.COLLECT: orders.collect,
    Action.CANCEL: orders.cancel,
}


def _allowed(order: Order | None, choice: int) -> Action | None:
    if order is None:
        return None
    allowed = sorted(a for a in orders.TRANSITIONS[order.fulfillment].get(order.state, {}))
    allowed = [a for a in allowed if a in ACTIONS]  # expiry and refunds have their own rules
    return allowed[choice % len(allowed)] if allowed else None


class StoreMachine(RuleBasedStateMachine):
    runner: ClassVar[asyncio.Runner]
    store: ClassVar[Store]

    def run(self, work: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await work

        return self.runner.run(wrapped())

    @initialize()
    def open_a_merchant(self) -> None:  # a fresh merchant per example
        terms = Terms(commission_rate_bp=1000, cashback_rate_bp=500, pickup_hold_s=HOLD_S)
        self.world = w = self.run(World.create(self.store, terms))
        self.received: Counter[tuple[BranchId, SkuId]] = Counter()
        self.placed: list[OrderId] = []
        self.shoppers = [ShopperId(new_id("u_")) for _ in range(3)]
        for branch, sku, qty in ((w.near, w.tea, 4), (w.near, w.cake, 2), (w.far, w.cake, 3)):
            self.run(w.receive(branch, sku, qty))
            self.received[branch.id, sku.id] += qty
        for shopper in self.shoppers:
            self.run(w.top_up(shopper, 2000))

    # -- steps --------------------------------------------------------------------------

    @rule(
        who=st.integers(0, 2),
        cake=st.booleans(),
        qty=st.integers(1, 3),
        delivery=st.booleans(),
        stored_value=st.integers(0, 9000),
        far_room=st.booleans(),
        overdue=st.booleans(),
    )
    def purchase(
        self,
        who: int,
        cake: bool,
        qty: int,
        delivery: bool,
        stored_value: int,
        far_room: bool,
        overdue: bool,
    ) -> None:
        w = self.world
        sku = w.cake if cake else w.tea
        cmd = w.command(
            self.shoppers[who],
            [(sku, qty)],
            fulfillment=FulfillmentKind.DELIVERY if delivery else FulfillmentKind.PICKUP,
            stored_value=min(stored_value, sku.price * qty),
            room=w.far if far_room else w.near,
        )
        at_ms = now_ms() - (HOLD_S * 1000 + 1000 if overdue else 0)
        planned = self.run(w.plan(cmd, at_ms))
        if isinstance(planned, Refusal):
            return
        result = self.run(w.apply(planned.plan))
        if isinstance(result, Applied):
            self.placed.append(planned.order.id)
        else:
            assert result in (
                Refusal(Reason.SOLD_OUT),
                Refusal(Reason.INSUFFICIENT_BALANCE),
            ), result

    @rule(pick=st.integers(0, 10_000), choice=st.integers(0, 3))
    def act(self, pick: int, choice: int) -> None:
        """A branch takes one of the steps the order's state allows."""
        order = self._pick(pick)
        action = _allowed(order, choice)
        if order is not None and action is not None:
            planned = ACTIONS[action](order, now_ms())
            assert isinstance(planned, Planned), planned
            assert isinstance(self.run(self.world.apply(planned.plan)), Applied)

    @rule(pick=st.integers(0, 10_000), choice=st.integers(0, 3))
    def act_twice_from_one_view(self, pick: int, choice: int) -> None:
        """Two consoles take the same step on the same view: only the first counts."""
        order = self._pick(pick)
        action = _allowed(order, choice)
        if order is None or action is None:
            return
        first, second = ACTIONS[action](order, now_ms()), ACTIONS[action](order, now_ms())
        assert isinstance(first, Planned), first
        assert isinstance(second, Planned), second
        assert isinstance(self.run(self.world.apply(first.plan)), Applied)
        assert self.run(self.world.apply(second.plan)) == Refusal(Reason.NOT_ALLOWED_IN_STATE)

    @rule(pick=st.integers(0, 10_000))
    def refund(self, pick: int) -> None:
        order = self._pick(pick)
        if order is None:
            return
        sv = self.run(self.store.stored_value(self.world.merchant, order.shopper))
        planned = orders.refund(order, sv.spendable, now_ms())
        if isinstance(planned, Planned):
            assert isinstance(self.run(self.world.apply(planned.plan)), Applied)

    @rule(who=st.integers(0, 2))
    def spend_cashback(self, who: int) -> None:
        """Spend all a shopper may on a paid-in-full pickup: cashback gets spent."""
        w, shopper = self.world, self.shoppers[who]
        spendable = self.run(self.store.stored_value(w.merchant, shopper)).spendable
        qty = spendable // w.tea.price
        if qty:
            cmd = w.command(shopper, [(w.tea, min(qty, 3))], stored_value=w.tea.price * min(qty, 3))
            planned = self.run(w.plan(cmd))
            if isinstance(planned, Planned) and isinstance(
                self.run(w.apply(planned.plan)), Applied
            ):
                self.placed.append(planned.order.id)
                result = self.run(w.act(ACTIONS[Action.PICK_UP], planned.order.id))
                assert isinstance(result, Applied)  # paid in full: completes at handover

    @rule()
    def sweep_expiries(self) -> None:
        w = self.world
        due = self.run(self.store.due_expiries(now_ms(), 10_000))
        for merchant, order_id in due:
            if merchant != w.merchant:
                continue  # another example's or test's merchant: its own sweeper's job
            order = self.run(self.store.order(merchant, order_id))
            assert order is not None
            assert order.state in (OrderState.PLACED, OrderState.READY)
            planned = orders.expire(order, now_ms())
            assert isinstance(planned, Planned)
            assert isinstance(self.run(w.apply(planned.plan)), Applied)

    @rule(who=st.integers(0, 2), amount=st.integers(1, 3000))
    def top_up(self, who: int, amount: int) -> None:
        self.run(self.world.top_up(self.shoppers[who], amount))

    @rule(far=st.booleans(), cake=st.booleans(), qty=st.integers(1, 3))
    def receive(self, far: bool, cake: bool, qty: int) -> None:
        w = self.world
        branch, sku = (w.far if far else w.near), (w.cake if cake else w.tea)
        self.run(w.receive(branch, sku, qty))
        self.received[branch.id, sku.id] += qty

    def _pick(self, pick: int) -> Order | None:
        if not self.placed:
            return None
        order_id = self.placed[pick % len(self.placed)]
        return self.run(self.store.order(self.world.merchant, order_id))

    # -- after every step ---------------------------------------------------------------

    @invariant()
    def books_hold(self) -> None:
        w = self.world
        self.run(w.check_books())
        placed = self.run(self.store.orders(w.merchant, limit=10_000))
        assert sorted(o.id for o in placed) == sorted(self.placed)
        reserved: Counter[tuple[BranchId, SkuId]] = Counter()
        sold: Counter[tuple[BranchId, SkuId]] = Counter()
        held: Counter[ShopperId] = Counter()
        for order in placed:
            for line in order.lines:
                if order.state in RESERVING:
                    reserved[order.ship_from, line.sku] += line.qty
                elif order.state in SOLD:
                    sold[order.ship_from, line.sku] += line.qty
            if order.state in HOLDING:
                held[order.shopper] += order.stored_value_part
        stock = self.run(self.store.stock(w.merchant))
        assert {k: s.received for k, s in stock.items() if s.received} == dict(self.received)
        assert {k: s.reserved for k, s in stock.items() if s.reserved} == dict(reserved)
        assert {k: s.sold for k, s in stock.items() if s.sold} == dict(sold)
        for shopper in self.shoppers:
            sv = self.run(self.store.stored_value(w.merchant, shopper))
            assert sv.held == held[shopper]
            assert sv.balance - sv.held >= 0


def test_random_operations_keep_the_books_and_the_stock(make_store: StoreFactory) -> None:
    with asyncio.Runner() as runner:
        store = make_store()
        runner.run(store.open())
        machine = type("Machine", (StoreMachine,), {"runner": runner, "store": store})
        try:
            run_state_machine_as_test(
                machine,
                settings=settings(
                    max_examples=40,
                    stateful_step_count=20,
                    deadline=None,
                    suppress_health_check=[HealthCheck.too_slow],
                ),
            )
        finally:
            runner.run(store.close())
