"""A server killed mid-load loses no acknowledged order and leaves no half-written one;
an idempotency key outlives a restart. Real processes, a real SQLite file."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp

from commerce import ledger
from commerce.ids import MerchantId
from streamserver.store.sqlite import SqliteStore
from tests.commerce_api import buying, call, new_shopper, ok, open_shop
from tests.conftest import launch_server, seed


async def test_sigkill_mid_load_keeps_every_acknowledged_order(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with aiohttp.ClientSession() as http:
        server = await launch_server(data, http)
        seeded = await seed(server)
        shop = await open_shop(server, seeded, stock=(400, 400))
        shoppers = await asyncio.gather(*(new_shopper(server, shop) for _ in range(20)))
        acknowledged: list[str] = []
        killed = asyncio.Event()

        async def buyer(n: int) -> None:
            body = {"lines": [{"sku": shop.sku, "qty": 1}], "fulfillment": "pickup"}
            while not killed.is_set():
                try:
                    status, order = await call(
                        server, "POST", shop.room_orders(n % 2), body, buying(shoppers[n])
                    )
                except aiohttp.ClientError:
                    return  # the server is gone
                if status == 201:
                    acknowledged.append(order["id"])
                    if len(acknowledged) == 150:
                        server.process.send_signal(signal.SIGKILL)  # mid-load, no warning
                        killed.set()

        await asyncio.gather(*(buyer(n) for n in range(20)))
        assert await server.stop() != 0  # killed, not stopped

        restarted = await launch_server(data, http)
        try:
            store = SqliteStore(data / "lianbo.sqlite3")
            await store.open()
            try:
                merchant = MerchantId(seeded.merchant)
                stored = {o.id for o in await store.orders(merchant, limit=10_000)}
                assert set(acknowledged) <= stored, "an acknowledged order was lost"
                levels = await store.stock(merchant)
                reserved = sum(level.reserved for level in levels.values())
                assert reserved == len(stored), "every stored order, and only those, holds stock"
                for level in levels.values():  # StockLevel checks sold+reserved+available=received
                    assert level.received == 400
                assert sum((await store.account_balances(merchant)).values()) == 0
                assert ledger.balances(await store.transfers(merchant)) == {
                    k: v for k, v in (await store.account_balances(merchant)).items() if v
                }
                queued = [
                    e.order for b in seeded.branches for e in await store.queue(merchant, b, 10_000)
                ]
                assert sorted(queued) == sorted(stored), "each order is queued exactly once"
            finally:
                await store.close()
            # And it still sells after the restart.
            body = {"lines": [{"sku": shop.sku, "qty": 1}], "fulfillment": "pickup"}
            status, _ = await call(
                restarted, "POST", shop.room_orders(0), body, buying(shoppers[0])
            )
            assert status == 201
        finally:
            assert await restarted.stop() == 0


async def test_an_idempotency_key_outlives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with aiohttp.ClientSession() as http:
        server = await launch_server(data, http)
        seeded = await seed(server)
        shop = await open_shop(server, seeded)
        mei = await new_shopper(server, shop)
        body = {"lines": [{"sku": shop.sku, "qty": 1}], "fulfillment": "pickup"}
        first = await ok(server, "POST", shop.room_orders(0), body, buying(mei, "tap-1"))
        assert await server.stop() == 0

        again = await launch_server(data, http)
        try:
            replay = await ok(again, "POST", shop.room_orders(0), body, buying(mei, "tap-1"))
            assert replay["id"] == first["id"]
            other_body = {**body, "lines": [{"sku": shop.sku, "qty": 2}]}
            status, refused = await call(
                again, "POST", shop.room_orders(0), other_body, buying(mei, "tap-1")
            )
            assert (status, refused["error"]) == (409, "key_reused")
            mine = await ok(again, "GET", "/api/me/orders", headers=mei)  # the session survived too
            assert [o["id"] for o in mine["orders"]] == [first["id"]]
        finally:
            assert await again.stop() == 0
