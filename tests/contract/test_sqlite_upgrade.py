"""A data dir written before the store indexed waiting pickups: opening it builds the
index once, so orders placed before the upgrade can still be handed over by code."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from commerce.ids import ShopperId
from streamserver.store.sqlite import SqliteStore
from tests.contract.world import PICKUP_CODE, World, new_id


async def test_opening_an_older_data_dir_indexes_its_waiting_pickups(tmp_path: Path) -> None:
    path = tmp_path / "lianbo.sqlite3"
    store = SqliteStore(path)
    await store.open()
    world = await World.create(store)
    await world.receive(world.near, world.tea, 5)
    waiting = await world.place(world.command(ShopperId(new_id("u_")), [(world.tea, 1)]))
    await store.close()

    with sqlite3.connect(path) as db:  # as the schema was before the index
        db.execute("DROP TABLE pickup_wait")

    reopened = SqliteStore(path)
    await reopened.open()
    try:
        found = await reopened.awaiting_pickup(world.merchant, world.near.id, PICKUP_CODE)
        assert [o.id for o in found] == [waiting.id]
    finally:
        await reopened.close()
