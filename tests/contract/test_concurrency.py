"""A flash sale's rush: many shoppers at once, each plan decided alone inside the store."""

from __future__ import annotations

import asyncio
from collections import Counter

from commerce.ids import ShopperId
from commerce.orders import Planned
from commerce.plan import Reason, Refusal
from streamserver.store.port import Applied, ApplyResult
from tests.contract.world import World, new_id

ATTEMPTS = 1000
UNITS = 10


async def test_a_thousand_concurrent_purchases_of_ten_units_make_ten_orders(
    world: World,
) -> None:
    await world.receive(world.near, world.tea, UNITS)

    async def attempt() -> ApplyResult:
        cmd = world.command(ShopperId(new_id("u_")), [(world.tea, 1)])
        planned = await world.plan(cmd)  # most views still show stock: the guard decides
        if isinstance(planned, Refusal):
            return planned
        assert isinstance(planned, Planned)
        return await world.apply(planned.plan)

    results = await asyncio.gather(*(attempt() for _ in range(ATTEMPTS)))
    outcomes = Counter(r.reason if isinstance(r, Refusal) else type(r).__name__ for r in results)
    assert outcomes == {"Applied": UNITS, Reason.SOLD_OUT: ATTEMPTS - UNITS}
    changes = [c.available for r in results if isinstance(r, Applied) for c in r.stock]
    assert sorted(changes) == list(range(UNITS))  # each unit left the shelf once
    assert await world.level(world.near, world.tea) == (UNITS, 0, UNITS, 0)
    assert len(await world.store.orders(world.merchant, limit=ATTEMPTS)) == UNITS
    assert len(await world.store.queue(world.merchant, world.near.id, limit=ATTEMPTS)) == UNITS
    await world.check_books()
