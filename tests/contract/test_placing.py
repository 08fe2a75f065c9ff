"""Placing orders: what a store writes, every refusal its guards can give at apply time,
and idempotent replay. Plans come from commerce.orders; races are made by applying plans
planned from the same (by then stale) view."""

from __future__ import annotations

import asyncio

from commerce import orders
from commerce.ids import Amount, ShopperId
from commerce.orders import FulfillmentKind, OrderState, Planned
from commerce.plan import MoveStock, Plan, PostTransfer, Reason, Refusal, StockMove
from commerce.pricing import Offer
from streamserver.store.port import Applied, Replayed, StockChange, StoredValue
from tests.contract.conftest import StoreFactory
from tests.contract.world import World, new_id, now_ms


def shopper() -> ShopperId:
    return ShopperId(new_id("u_"))


async def planned(world: World, cmd: orders.PlaceOrder, at_ms: int | None = None) -> Planned:
    plan = await world.plan(cmd, at_ms)
    assert isinstance(plan, Planned), plan
    return plan


async def test_a_pickup_order_reserves_stock_at_the_selling_branch(world: World) -> None:
    await world.receive(world.near, world.tea, 10)
    await world.receive(world.far, world.tea, 10)
    alice = shopper()
    await world.top_up(alice, 5000)
    plan = await planned(world, world.command(alice, [(world.tea, 2)], stored_value=1000))
    result = await world.apply(plan.plan)
    assert result == Applied((StockChange(world.near.id, world.tea.id, 8),))
    assert await world.level(world.near, world.tea) == (10, 8, 2, 0)
    assert await world.level(world.far, world.tea) == (10, 10, 0, 0)
    assert await world.store.stored_value(world.merchant, alice) == StoredValue(
        Amount(5000), Amount(1000)
    )
    stored = await world.store.order(world.merchant, plan.order.id)
    assert stored == plan.order
    assert stored.state is OrderState.PLACED
    assert stored.ship_from == world.near.id
    await world.check_books()


async def test_a_delivery_order_reserves_stock_at_the_nearest_branch_holding_it(
    world: World,
) -> None:
    await world.receive(world.near, world.cake, 3)
    await world.receive(world.far, world.cake, 3)
    bob = shopper()
    cmd = world.command(bob, [(world.cake, 1)], fulfillment=FulfillmentKind.DELIVERY)
    order = await world.place(cmd)  # placed in the near branch's room, delivered near far
    assert order.ship_from == world.far.id
    assert await world.level(world.far, world.cake) == (3, 2, 1, 0)
    assert await world.level(world.near, world.cake) == (3, 3, 0, 0)
    assert await world.store.order(world.merchant, order.id) == order
    await world.check_books()


async def test_orders_are_listed_for_the_selling_and_fulfilling_branch_and_the_shopper(
    world: World,
) -> None:
    store, m = world.store, world.merchant
    await world.receive(world.far, world.cake, 5)
    await world.receive(world.near, world.tea, 5)
    alice, bob = shopper(), shopper()
    t = now_ms()
    delivered = await world.place(
        world.command(alice, [(world.cake, 1)], fulfillment=FulfillmentKind.DELIVERY), t
    )
    picked = await world.place(world.command(alice, [(world.tea, 1)]), t + 1)
    far_room = await world.place(world.command(bob, [(world.cake, 1)], room=world.far), t + 2)

    def ids(found: list[orders.Order]) -> list[str]:
        return [o.id for o in found]

    # newest first
    assert ids(await store.orders(m)) == [far_room.id, picked.id, delivered.id]
    assert ids(await store.orders(m, branch=world.near.id)) == [picked.id, delivered.id]
    assert ids(await store.orders(m, branch=world.far.id)) == [far_room.id, delivered.id]
    assert ids(await store.orders(m, shopper=alice)) == [picked.id, delivered.id]
    assert ids(await store.orders(m, shopper=bob, branch=world.near.id)) == []
    assert ids(await store.orders(m, shopper=alice, branch=world.far.id)) == [delivered.id]
    assert ids(await store.orders(m, limit=2)) == [far_room.id, picked.id]
    assert await store.orders(m, shopper=shopper()) == []


async def test_the_last_units_go_to_the_first_plan_applied(world: World) -> None:
    await world.receive(world.near, world.tea, 1)
    first = await planned(world, world.command(shopper(), [(world.tea, 1)]))
    second = await planned(world, world.command(shopper(), [(world.tea, 1)]))  # same view
    assert isinstance(await world.apply(first.plan), Applied)
    assert await world.apply(second.plan) == Refusal(Reason.SOLD_OUT)
    assert await world.store.order(world.merchant, second.order.id) is None
    assert await world.level(world.near, world.tea) == (1, 0, 1, 0)


async def test_a_per_shopper_limit_holds_against_a_stale_view(world: World) -> None:
    offer = Offer(sku=world.tea.id, price=Amount(990), limit_per_shopper=2)
    await world.store.put_offer(world.merchant, offer)
    await world.receive(world.near, world.tea, 10)
    alice = shopper()
    first = await planned(world, world.command(alice, [(world.tea, 2)]))
    second = await planned(world, world.command(alice, [(world.tea, 1)]))
    assert isinstance(await world.apply(first.plan), Applied)
    assert await world.apply(second.plan) == Refusal(Reason.OVER_LIMIT)
    assert await world.level(world.near, world.tea) == (10, 8, 2, 0)


async def test_the_first_failing_guard_decides_the_refusal(world: World) -> None:
    offer = Offer(sku=world.tea.id, price=Amount(990), limit_per_shopper=1)
    await world.store.put_offer(world.merchant, offer)
    await world.receive(world.near, world.tea, 1)
    alice = shopper()
    first = await planned(world, world.command(alice, [(world.tea, 1)]))
    second = await planned(world, world.command(alice, [(world.tea, 1)], stored_value=500))
    assert isinstance(await world.apply(first.plan), Applied)
    # over the limit, sold out and short of stored value: the limit comes first
    assert await world.apply(second.plan) == Refusal(Reason.OVER_LIMIT)


async def test_stored_value_held_for_one_order_cannot_pay_for_another(world: World) -> None:
    await world.receive(world.near, world.cake, 5)
    alice = shopper()
    await world.top_up(alice, 1000)
    first = await planned(world, world.command(alice, [(world.cake, 1)], stored_value=800))
    second = await planned(world, world.command(alice, [(world.cake, 1)], stored_value=300))
    assert isinstance(await world.apply(first.plan), Applied)
    assert await world.apply(second.plan) == Refusal(Reason.INSUFFICIENT_BALANCE)
    too_much = await planned(world, world.command(shopper(), [(world.cake, 1)], stored_value=1))
    assert await world.apply(too_much.plan) == Refusal(Reason.INSUFFICIENT_BALANCE)
    assert await world.store.stored_value(world.merchant, alice) == StoredValue(
        Amount(1000), Amount(800)
    )
    assert await world.level(world.near, world.cake) == (5, 4, 1, 0)
    await world.check_books()


async def test_a_flash_sale_ends_by_the_stores_clock(world: World) -> None:
    ends_at_ms = now_ms() - 1  # already over by the store's clock
    offer = Offer(sku=world.tea.id, price=Amount(990), ends_at_ms=ends_at_ms)
    await world.store.put_offer(world.merchant, offer)
    await world.receive(world.near, world.tea, 5)
    # planned by a node whose clock still says the sale is on
    late = await planned(world, world.command(shopper(), [(world.tea, 1)]), ends_at_ms - 1000)
    assert await world.apply(late.plan) == Refusal(Reason.FLASH_ENDED)
    assert await world.level(world.near, world.tea) == (5, 5, 0, 0)


async def test_an_order_is_acted_on_once_from_a_stale_view(world: World) -> None:
    await world.receive(world.near, world.tea, 3)
    order = await world.place(world.command(shopper(), [(world.tea, 2)]))
    cancel_a = orders.cancel(order, now_ms())
    cancel_b = orders.cancel(order, now_ms())  # a second franchisee, same view
    assert isinstance(cancel_a, Planned)
    assert isinstance(cancel_b, Planned)
    assert isinstance(await world.apply(cancel_a.plan), Applied)
    assert await world.apply(cancel_b.plan) == Refusal(Reason.NOT_ALLOWED_IN_STATE)
    assert await world.level(world.near, world.tea) == (3, 3, 0, 0)  # released once
    ready = orders.mark_ready(order, now_ms())
    assert isinstance(ready, Planned)
    assert await world.apply(ready.plan) == Refusal(Reason.NOT_ALLOWED_IN_STATE)


async def test_an_order_is_not_expired_before_the_stores_clock_reaches_its_due_time(
    world: World,
) -> None:
    await world.receive(world.near, world.tea, 3)
    order = await world.place(world.command(shopper(), [(world.tea, 1)]))
    assert order.expires_at_ms is not None
    early = orders.expire(order, order.expires_at_ms)  # a sweeper whose clock runs fast
    assert isinstance(early, Planned)
    assert await world.apply(early.plan) == Refusal(Reason.NOT_EXPIRED)
    assert await world.state(order.id) == OrderState.PLACED


async def test_the_same_key_and_body_replays_the_first_order(world: World) -> None:
    await world.receive(world.near, world.tea, 5)
    alice = shopper()
    first = await world.place(world.command(alice, [(world.tea, 1)], key="k1", digest="d1"))
    retry = await planned(world, world.command(alice, [(world.tea, 1)], key="k1", digest="d1"))
    assert retry.order.id != first.id
    assert await world.apply(retry.plan) == Replayed(first.id)
    assert await world.store.order(world.merchant, retry.order.id) is None
    assert await world.level(world.near, world.tea) == (5, 4, 1, 0)  # nothing written
    assert len(await world.store.orders(world.merchant)) == 1
    # the key is the shopper's: another shopper may use it
    bob = await planned(world, world.command(shopper(), [(world.tea, 1)], key="k1", digest="d1"))
    assert isinstance(await world.apply(bob.plan), Applied)


async def test_the_same_key_with_another_body_is_refused(world: World) -> None:
    await world.receive(world.near, world.tea, 5)
    alice = shopper()
    await world.place(world.command(alice, [(world.tea, 1)], key="k1", digest="d1"))
    other = await planned(world, world.command(alice, [(world.tea, 2)], key="k1", digest="d2"))
    assert await world.apply(other.plan) == Refusal(Reason.KEY_REUSED, field="key")
    assert await world.level(world.near, world.tea) == (5, 4, 1, 0)


async def test_a_refused_attempt_may_be_retried_with_the_same_key(world: World) -> None:
    await world.receive(world.near, world.tea, 1)
    alice = shopper()
    mine = await planned(world, world.command(alice, [(world.tea, 1)], key="k1", digest="d1"))
    await world.place(world.command(shopper(), [(world.tea, 1)]))  # takes the last unit
    assert await world.apply(mine.plan) == Refusal(Reason.SOLD_OUT)
    await world.receive(world.near, world.tea, 1)
    again = await planned(world, world.command(alice, [(world.tea, 1)], key="k1", digest="d1"))
    assert isinstance(await world.apply(again.plan), Applied)


async def test_a_replay_survives_closing_and_reopening_the_store(
    world: World, make_store: StoreFactory
) -> None:
    await world.receive(world.near, world.tea, 5)
    alice = shopper()
    first = await world.place(world.command(alice, [(world.tea, 1)], key="k1", digest="d1"))
    retry = await planned(world, world.command(alice, [(world.tea, 1)], key="k1", digest="d1"))
    reused = await planned(world, world.command(alice, [(world.tea, 1)], key="k1", digest="x"))
    await world.store.close()
    reopened = make_store()
    await reopened.open()
    try:
        assert await reopened.apply(world.merchant, retry.plan) == Replayed(first.id)
        assert await reopened.order(world.merchant, first.id) == first
        assert await reopened.apply(world.merchant, reused.plan) == Refusal(
            Reason.KEY_REUSED, field="key"
        )
    finally:
        await reopened.close()


async def test_plans_applied_together_are_each_whole_or_refused_alone(world: World) -> None:
    """Stores may apply concurrent plans in one batch; each still decides alone."""
    await world.receive(world.near, world.tea, 2)
    alice = shopper()
    await world.top_up(alice, 100)
    plans = [
        await planned(world, world.command(shopper(), [(world.tea, 1)])),
        await planned(world, world.command(alice, [(world.tea, 1)], stored_value=500)),
        await planned(world, world.command(shopper(), [(world.tea, 1)])),
        await planned(world, world.command(shopper(), [(world.tea, 1)])),
    ]
    results = await asyncio.gather(*(world.apply(p.plan) for p in plans))
    assert results[1] == Refusal(Reason.INSUFFICIENT_BALANCE)
    assert [type(r) for r in results] == [Applied, Refusal, Applied, Refusal]
    assert results[3] == Refusal(Reason.SOLD_OUT)
    assert await world.level(world.near, world.tea) == (2, 0, 2, 0)
    assert await world.store.stored_value(world.merchant, alice) == StoredValue(
        Amount(100), Amount(0)
    )
    await world.check_books()


async def test_a_plan_that_would_break_an_invariant_raises_and_writes_nothing(
    world: World,
) -> None:
    """Only a bug makes such a plan (the core guards every move); the store refuses it
    whole, raising for its caller alone, and applies the plans around it."""
    await world.receive(world.near, world.tea, 2)
    alice = shopper()
    await world.top_up(alice, 100)
    top_up = next(t for t in await world.store.transfers(world.merchant))
    before = await world.level(world.near, world.tea)
    broken = [
        Plan((), (MoveStock(world.near.id, world.tea.id, 1, StockMove.SELL),)),  # none reserved
        Plan(
            (),
            (
                MoveStock(world.near.id, world.tea.id, 1, StockMove.RECEIVE),
                PostTransfer(top_up),  # a transfer is stored once
            ),
        ),
    ]
    for plan in broken:
        good = await planned(world, world.command(shopper(), [(world.tea, 1)]))
        results = await asyncio.gather(
            world.apply(plan), world.apply(good.plan), return_exceptions=True
        )
        assert isinstance(results[0], Exception), results[0]
        assert isinstance(results[1], Applied)
        await world.receive(world.near, world.tea, 1)
    assert await world.level(world.near, world.tea) == (before[0] + 2, 2, 2, 0)
    assert await world.store.stored_value(world.merchant, alice) == StoredValue(
        Amount(100), Amount(0)
    )
    await world.check_books()
