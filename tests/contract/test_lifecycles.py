"""Orders from placing to their end, with the money and stock each step moves.

Terms of the test merchant: HQ commission 10 %, cashback 5 % (10 % where a test says),
funded by HQ. After every step the books must balance (`World.check_books`).
"""

from __future__ import annotations

import functools

from commerce import ledger, orders
from commerce.catalog import Terms
from commerce.ids import Amount, OrderId, ShopperId
from commerce.ledger import Code
from commerce.orders import FulfillmentKind, Order, OrderState, Planned
from commerce.plan import Reason, Refusal
from commerce.pricing import Offer
from streamserver.store.port import Applied, StoredValue
from tests.contract.world import PICKUP_CODE, World, new_id, now_ms


def shopper() -> ShopperId:
    return ShopperId(new_id("u_"))


async def step(world: World, action: orders.Action, order: OrderId) -> None:
    """Apply one action to the order as it is stored now; it must be accepted."""
    plans = {
        orders.Action.MARK_READY: orders.mark_ready,
        orders.Action.SHIP: orders.ship,
        orders.Action.PICK_UP: functools.partial(_pick_up, code=PICKUP_CODE),
        orders.Action.DELIVER: orders.deliver,
        orders.Action.COLLECT: orders.collect,
        orders.Action.CANCEL: orders.cancel,
        orders.Action.EXPIRE: orders.expire,
    }
    result = await world.act(plans[action], order)
    assert isinstance(result, Applied), result
    await world.check_books()


def _pick_up(order: Order, now_ms: int, *, code: str) -> Planned | Refusal:
    return orders.pick_up(order, code, now_ms)


async def money(world: World, order: OrderId) -> dict[Code, int]:
    """The order's transfers: amount by code."""
    found = [t for t in await world.store.transfers(world.merchant) if t.order == order]
    assert len({t.code for t in found}) == len(found)
    return {t.code: t.amount for t in found}


async def due(world: World, at_ms: int) -> list[OrderId]:
    return [o for m, o in await world.store.due_expiries(at_ms, 10_000) if m == world.merchant]


async def test_a_pickup_order_is_readied_picked_up_by_code_and_paid(world: World) -> None:
    store, m = world.store, world.merchant
    await world.receive(world.near, world.tea, 10)
    alice = shopper()
    await world.top_up(alice, 5000)
    order = await world.place(world.command(alice, [(world.tea, 2)], stored_value=1000))
    await world.check_books()
    assert order.total == 3000
    assert order.expires_at_ms is not None
    assert await due(world, order.expires_at_ms) == [order.id]

    await step(world, orders.Action.MARK_READY, order.id)
    assert await world.state(order.id) == OrderState.READY
    ready = await store.order(m, order.id)
    assert ready is not None
    assert orders.pick_up(ready, "000000", now_ms()) == Refusal(
        Reason.WRONG_PICKUP_CODE, field="code"
    )
    await step(world, orders.Action.PICK_UP, order.id)
    assert await world.state(order.id) == OrderState.PICKED_UP
    assert await world.level(world.near, world.tea) == (10, 8, 0, 2)
    assert await due(world, order.expires_at_ms) == []  # handed over: no longer expires

    await step(world, orders.Action.COLLECT, order.id)
    completed = await store.order(m, order.id)
    assert completed is not None
    assert completed.state is OrderState.COMPLETED
    assert completed.cashback == 150
    assert await money(world, order.id) == {
        Code.STORED_VALUE_PAYMENT: 1000,
        Code.CASH_PAYMENT: 2000,
        Code.COMMISSION_ON_STORED_VALUE: 100,
        Code.COMMISSION_ON_CASH: 200,
        Code.CASHBACK: 150,
    }
    assert await store.stored_value(m, alice) == StoredValue(Amount(4150), Amount(0))
    balances = await store.account_balances(m)  # type: ignore[attr-defined]
    assert {a: v for a, v in balances.items() if v} == {
        ledger.CLEARING: -5000,
        ledger.stored_value(alice): 4150,
        ledger.cash(world.near.id): -2000,
        ledger.revenue(world.near.id): 2700,
        ledger.COMMISSION: 300,
        ledger.HQ_CASHBACK: -150,
    }


async def test_a_delivery_order_is_shipped_delivered_and_paid(world: World) -> None:
    store, m = world.store, world.merchant
    await world.receive(world.far, world.cake, 3)
    bob = shopper()
    cmd = world.command(bob, [(world.cake, 1)], fulfillment=FulfillmentKind.DELIVERY)
    order = await world.place(cmd)
    assert order.ship_from == world.far.id
    assert order.expires_at_ms is None
    await step(world, orders.Action.SHIP, order.id)
    await step(world, orders.Action.DELIVER, order.id)
    assert await world.state(order.id) == OrderState.DELIVERED
    assert await world.level(world.far, world.cake) == (3, 2, 0, 1)
    await step(world, orders.Action.COLLECT, order.id)
    assert await world.state(order.id) == OrderState.COMPLETED
    assert await money(world, order.id) == {
        Code.CASH_PAYMENT: 3000,
        Code.COMMISSION_ON_CASH: 300,
        Code.CASHBACK: 150,
    }
    cash = [t for t in await store.transfers(m) if t.code is Code.CASH_PAYMENT]
    assert [(t.debit, t.credit) for t in cash] == [
        (ledger.cash(world.far.id), ledger.revenue(world.near.id))  # far's till, near's sale
    ]
    assert await store.stored_value(m, bob) == StoredValue(Amount(150), Amount(0))


async def test_an_order_paid_in_stored_value_completes_at_handover(world: World) -> None:
    await world.receive(world.far, world.cake, 1)
    carol = shopper()
    await world.top_up(carol, 3000)
    cmd = world.command(
        carol, [(world.cake, 1)], fulfillment=FulfillmentKind.DELIVERY, stored_value=3000
    )
    order = await world.place(cmd)
    await step(world, orders.Action.SHIP, order.id)
    await step(world, orders.Action.DELIVER, order.id)
    assert await world.state(order.id) == OrderState.COMPLETED
    assert await world.store.stored_value(world.merchant, carol) == StoredValue(
        Amount(150), Amount(0)
    )


async def test_cancelling_releases_the_stock_the_hold_and_the_limit(world: World) -> None:
    store, m = world.store, world.merchant
    await store.put_offer(m, Offer(sku=world.tea.id, price=Amount(990), limit_per_shopper=2))
    await world.receive(world.near, world.tea, 5)
    dave = shopper()
    await world.top_up(dave, 1000)
    order = await world.place(world.command(dave, [(world.tea, 2)], stored_value=500))
    assert await store.stored_value(m, dave) == StoredValue(Amount(1000), Amount(500))
    await step(world, orders.Action.CANCEL, order.id)
    assert await world.state(order.id) == OrderState.CANCELLED
    assert await world.level(world.near, world.tea) == (5, 5, 0, 0)
    assert await store.stored_value(m, dave) == StoredValue(Amount(1000), Amount(0))
    assert order.expires_at_ms is not None
    assert await due(world, order.expires_at_ms + 1) == []
    assert await money(world, order.id) == {}
    # the limit counts what he kept, not what he cancelled
    await world.place(world.command(dave, [(world.tea, 2)], stored_value=1000))


async def test_an_unpicked_order_expires_and_releases_everything(world: World) -> None:
    store, m = world.store, world.merchant
    terms = await store.terms(m)
    await world.receive(world.near, world.tea, 5)
    erin = shopper()
    await world.top_up(erin, 1000)
    placed_at_ms = now_ms() - terms.pickup_hold_s * 1000 - 1000  # its hold ended 1 s ago
    order = await world.place(world.command(erin, [(world.tea, 1)], stored_value=700), placed_at_ms)
    assert order.id in await due(world, now_ms())
    assert order.id not in await due(world, placed_at_ms)
    await step(world, orders.Action.EXPIRE, order.id)
    assert await world.state(order.id) == OrderState.EXPIRED
    assert await world.level(world.near, world.tea) == (5, 5, 0, 0)
    assert await store.stored_value(m, erin) == StoredValue(Amount(1000), Amount(0))
    assert order.id not in await due(world, now_ms())


async def test_a_refund_claws_back_what_is_left_of_spent_cashback(world: World) -> None:
    store, m = world.store, world.merchant
    await store.set_terms(m, Terms(commission_rate_bp=1000, cashback_rate_bp=1000))
    await world.receive(world.near, world.cake, 5)
    await world.receive(world.near, world.tea, 5)
    frank = shopper()
    world.shoppers.add(frank)
    first = await world.place(world.command(frank, [(world.cake, 1)]))  # 3000 cash
    await step(world, orders.Action.PICK_UP, first.id)
    await step(world, orders.Action.COLLECT, first.id)
    assert await store.stored_value(m, frank) == StoredValue(Amount(300), Amount(0))
    # he spends 200 of the 300 cashback on tea, which earns him 150 more
    second = await world.place(world.command(frank, [(world.tea, 1)], stored_value=200))
    await step(world, orders.Action.PICK_UP, second.id)
    await step(world, orders.Action.COLLECT, second.id)
    assert await store.stored_value(m, frank) == StoredValue(Amount(250), Amount(0))

    completed = await store.order(m, first.id)
    assert completed is not None
    stale = orders.refund(completed, Amount(250), now_ms())
    assert isinstance(stale, Planned)
    # before the refund lands he holds 100 for a new order: 150 is all that is left
    third = await world.place(world.command(frank, [(world.tea, 1)], stored_value=100))
    assert await world.apply(stale.plan) == Refusal(Reason.INSUFFICIENT_BALANCE)
    assert await world.state(first.id) == OrderState.COMPLETED
    await world.check_books()

    spendable = (await store.stored_value(m, frank)).spendable
    assert spendable == 150
    fresh = orders.refund(completed, spendable, now_ms())
    assert isinstance(fresh, Planned)
    assert isinstance(await world.apply(fresh.plan), Applied)
    await world.check_books()
    assert await world.state(first.id) == OrderState.REFUNDED
    refunded = await money(world, first.id)
    assert refunded[Code.CASHBACK_CLAWBACK] == 150
    assert refunded[Code.CASHBACK_WITHHELD] == 150
    assert refunded[Code.REFUND_CASH] == 3000 - 150
    assert refunded[Code.REFUND_COMMISSION_ON_CASH] == 300
    assert await store.stored_value(m, frank) == StoredValue(Amount(100), Amount(100))
    assert await world.level(world.near, world.cake) == (5, 5, 0, 0)  # back on the shelf
    await step(world, orders.Action.CANCEL, third.id)
    assert await store.stored_value(m, frank) == StoredValue(Amount(100), Amount(0))


async def test_the_counter_finds_an_order_by_its_code_only_while_it_awaits_pickup(
    world: World,
) -> None:
    """However many orders came since (the code is an index, not a scan of the latest)."""
    await world.receive(world.near, world.tea, 10)
    await world.receive(world.far, world.tea, 10)

    async def waiting() -> set[OrderId]:
        found = await world.store.awaiting_pickup(world.merchant, world.near.id, PICKUP_CODE)
        elsewhere = await world.store.awaiting_pickup(world.merchant, world.far.id, PICKUP_CODE)
        assert not elsewhere  # nothing is fulfilled by the far branch
        return {o.id for o in found}

    first = await world.place(world.command(shopper(), [(world.tea, 1)]))
    second = await world.place(world.command(shopper(), [(world.tea, 1)]))  # the same code
    delivered = world.command(shopper(), [(world.tea, 1)], fulfillment=FulfillmentKind.DELIVERY)
    await world.place(delivered)
    assert await world.store.awaiting_pickup(world.merchant, world.near.id, "000000") == []
    assert await waiting() == {first.id, second.id}

    await step(world, orders.Action.MARK_READY, first.id)
    found = await world.store.awaiting_pickup(world.merchant, world.near.id, PICKUP_CODE)
    assert {o.id: o.state for o in found} == {
        first.id: OrderState.READY,
        second.id: OrderState.PLACED,
    }
    await step(world, orders.Action.PICK_UP, first.id)
    await step(world, orders.Action.CANCEL, second.id)
    assert await waiting() == set()
