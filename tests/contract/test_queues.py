"""What leaves the core through a store: each fulfilling branch's queue, the outbox,
the expiry index the sweeper reads, and customers by first touch."""

from __future__ import annotations

from commerce import orders
from commerce.ids import BranchId, ShopperId
from commerce.orders import FulfillmentKind, OrderState
from commerce.plan import Refusal
from streamserver.store.port import Applied, Customer, Store
from tests.contract.conftest import StoreFactory
from tests.contract.world import World, new_id, now_ms


def shopper() -> ShopperId:
    return ShopperId(new_id("u_"))


async def queued(store: Store, world: World, branch: BranchId) -> list[str]:
    return [e.order for e in await store.queue(world.merchant, branch)]


async def test_each_order_is_queued_once_at_its_fulfilling_branch_in_acceptance_order(
    world: World, make_store: StoreFactory
) -> None:
    store, m = world.store, world.merchant
    await world.receive(world.near, world.tea, 10)
    await world.receive(world.far, world.cake, 10)
    first = await world.place(world.command(shopper(), [(world.tea, 1)]))
    delivery = await world.place(
        world.command(shopper(), [(world.cake, 1)], fulfillment=FulfillmentKind.DELIVERY)
    )
    second = await world.place(world.command(shopper(), [(world.tea, 1)]))
    third = await world.place(world.command(shopper(), [(world.tea, 2)]))
    assert delivery.ship_from == world.far.id
    near = [first.id, second.id, third.id]
    assert await queued(store, world, world.near.id) == near
    assert await queued(store, world, world.near.id) == near  # reading does not consume
    assert await queued(store, world, world.far.id) == [delivery.id]
    entries = await store.queue(m, world.near.id, limit=2)
    assert [e.order for e in entries] == near[:2]
    assert len({e.id for e in await store.queue(m, world.near.id)}) == 3

    assert isinstance(await world.act(orders.mark_ready, second.id), Applied)
    assert await queued(store, world, world.near.id) == [first.id, third.id]
    assert isinstance(await world.act(orders.ship, delivery.id), Applied)
    assert await queued(store, world, world.far.id) == []

    await store.close()
    reopened = make_store()
    await reopened.open()
    try:
        assert await queued(reopened, world, world.near.id) == [first.id, third.id]
        assert await queued(reopened, world, world.far.id) == []
    finally:
        await reopened.close()


async def test_a_branch_with_nothing_queued_has_an_empty_queue(world: World) -> None:
    assert await world.store.queue(world.merchant, world.far.id) == []


async def test_the_outbox_holds_every_event_in_order(world: World) -> None:
    store, m = world.store, world.merchant
    await world.receive(world.near, world.tea, 10)
    alice = shopper()
    first = await world.place(world.command(alice, [(world.tea, 1)]))
    second = await world.place(world.command(alice, [(world.tea, 1)]))
    await world.act(orders.mark_ready, first.id)
    await world.act(orders.cancel, second.id)
    entries = await store.outbox(m, 0)
    assert [(e.event.order, e.event.state) for e in entries] == [
        (first.id, OrderState.PLACED),
        (second.id, OrderState.PLACED),
        (first.id, OrderState.READY),
        (second.id, OrderState.CANCELLED),
    ]
    seqs = [e.seq for e in entries]
    assert seqs == sorted(set(seqs))
    assert all(e.event.selling == world.near.id for e in entries)
    assert all(e.event.shopper == alice for e in entries)
    assert await store.outbox(m, seqs[1]) == entries[2:]
    assert await store.outbox(m, seqs[0], limit=2) == entries[1:3]
    assert await store.outbox(m, seqs[-1]) == []
    other = await World.create(store)
    assert await store.outbox(other.merchant, 0) == []


async def test_due_expiries_are_the_pickup_orders_whose_hold_ended(world: World) -> None:
    store, m = world.store, world.merchant
    terms = await store.terms(m)
    await world.receive(world.near, world.tea, 10)
    await world.receive(world.far, world.cake, 10)
    hold_ms = terms.pickup_hold_s * 1000
    t = now_ms() - hold_ms - 10_000
    late = await world.place(world.command(shopper(), [(world.tea, 1)]), t)
    later = await world.place(world.command(shopper(), [(world.tea, 1)]), t + 5_000)
    fresh = await world.place(world.command(shopper(), [(world.tea, 1)]))
    await world.place(
        world.command(shopper(), [(world.cake, 1)], fulfillment=FulfillmentKind.DELIVERY), t
    )

    async def due(at_ms: int, limit: int = 10_000) -> list[str]:
        return [o for mm, o in await store.due_expiries(at_ms, limit) if mm == m]

    assert await due(now_ms()) == [late.id, later.id]  # soonest due first; never deliveries
    assert await due(t + hold_ms) == [late.id]
    assert await due(t + hold_ms - 1) == []
    assert fresh.expires_at_ms is not None
    assert await due(fresh.expires_at_ms) == [late.id, later.id, fresh.id]
    assert len(await store.due_expiries(now_ms(), 1)) == 1
    assert isinstance(await world.act(orders.expire, late.id), Applied)
    assert await due(now_ms()) == [later.id]
    # expiring is idempotent: the sweeper may meet the same order twice
    expired = await store.order(m, late.id)
    assert expired is not None
    assert isinstance(orders.expire(expired, now_ms()), Refusal)


async def test_a_shopper_is_the_customer_of_the_branch_that_first_sold_to_them(
    world: World,
) -> None:
    store, m = world.store, world.merchant
    await world.receive(world.near, world.tea, 10)
    await world.receive(world.far, world.tea, 10)
    alice, bob = shopper(), shopper()
    t = now_ms()
    await world.place(world.command(alice, [(world.tea, 1)]), t)
    await world.place(world.command(alice, [(world.tea, 1)], room=world.far), t + 10)
    await world.place(world.command(bob, [(world.tea, 1)], room=world.far), t + 20)
    await world.place(world.command(bob, [(world.tea, 1)]), t + 30)
    assert await store.customers(m, world.near.id) == [Customer(alice, world.near.id, t)]
    assert await store.customers(m, world.far.id) == [Customer(bob, world.far.id, t + 20)]
