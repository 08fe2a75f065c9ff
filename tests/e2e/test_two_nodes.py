"""Two `lianbo serve` processes on one Redis: cards, stock and resumption cross nodes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgpack

from tests.commerce_api import buying, new_shopper, ok, open_shop
from tests.conftest import ServerProcess, launch_server, seed

HELLO_FIRST = {"v": 1, "type": "hello", "data": {"last_seq": None}}


async def room_socket(
    node: ServerProcess,
    show: str,
    branch: str,
    last_seq: int | None = None,
    headers: dict[str, str] | None = None,
) -> aiohttp.ClientWebSocketResponse:
    ws = await node.http.ws_connect(node.url(f"/ws/shows/{show}/rooms/{branch}"), headers=headers)
    await ws.send_bytes(msgpack.packb({**HELLO_FIRST, "data": {"last_seq": last_seq}}))
    return ws


async def next_frame(
    ws: aiohttp.ClientWebSocketResponse,
    kind: str,
    matching: Callable[[dict[str, Any]], bool] = lambda frame: True,
) -> dict[str, Any]:
    """The next frame of `kind` that `matching` accepts (others pass by: viewer counts,
    or a stock level from the shop's own stock receipts, flushed up to 0.25 s late)."""
    async with asyncio.timeout(10):
        while True:
            message = await ws.receive()
            assert message.type == aiohttp.WSMsgType.BINARY, message
            frame: dict[str, Any] = msgpack.unpackb(message.data)
            if frame["type"] == kind and matching(frame):
                return frame


async def frames_until(ws: aiohttp.ClientWebSocketResponse, kind: str) -> list[dict[str, Any]]:
    """Every frame up to and including the first of `kind`."""
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        while not frames or frames[-1]["type"] != kind:
            message = await ws.receive()
            assert message.type == aiohttp.WSMsgType.BINARY, message
            frames.append(msgpack.unpackb(message.data))
    return frames


async def test_cards_stock_and_resumption_cross_nodes(tmp_path: Path, redis_url: str) -> None:
    async with aiohttp.ClientSession() as http:
        one = await launch_server(tmp_path / "one", http, "--redis-url", redis_url)
        two = await launch_server(tmp_path / "two", http, "--redis-url", redis_url)
        try:
            seeded = await seed(one)  # created through node one, seen by node two
            shop = await open_shop(one, seeded, stock=(10, 7))
            a = seeded.branches[0]
            watcher_on_two = await room_socket(two, seeded.show, a)
            snapshot = await next_frame(watcher_on_two, "snapshot")
            assert snapshot["data"]["cards"] == []
            watcher_on_one = await room_socket(one, seeded.show, a)
            await next_frame(watcher_on_one, "snapshot")

            host = {"Authorization": f"Bearer {seeded.host_token}"}
            await ok(
                one,
                "POST",
                f"/api/shows/{seeded.show}/cards",
                {"sku": shop.sku, "price": 999},
                host,
            )
            shown = await next_frame(watcher_on_two, "card.shown")
            assert (shown["data"]["price"], shown["data"]["available_here"]) == (999, 10)

            mei = await new_shopper(two, shop)
            mei_on_one = await room_socket(one, seeded.show, a, headers=mei)
            await next_frame(mei_on_one, "snapshot")
            body = {"lines": [{"sku": shop.sku, "qty": 3}], "fulfillment": "pickup"}
            order = await ok(two, "POST", shop.room_orders(0), body, buying(mei))
            assert order["total"] == 3 * 999  # the card's price, pinned on the other node
            # Her own order frame reaches her socket on the other node.
            told = await next_frame(mei_on_one, "order")
            assert (told["data"]["order"], told["data"]["state"]) == (order["id"], "placed")
            await mei_on_one.close()
            stock = await next_frame(
                watcher_on_one, "stock", lambda f: f["data"]["cards"][0]["available_here"] == 7
            )
            last_seq = stock["seq"]
            await watcher_on_one.close()

            # While it is away, the host changes the price on node one.
            await ok(
                one,
                "PATCH",
                f"/api/shows/{seeded.show}/cards/{shown['data']['id']}",
                {"price": 888},
                host,
            )
            back_on_two = await room_socket(two, seeded.show, a, last_seq=last_seq)
            # Everything it missed comes back in order with no gap. A late stock flush
            # may come first, so the price change is not necessarily the very next frame.
            missed = await frames_until(back_on_two, "card.updated")
            assert [f["seq"] for f in missed] == list(
                range(last_seq + 1, last_seq + 1 + len(missed))
            )
            assert missed[-1]["data"]["price"] == 888
            for ws in (watcher_on_two, back_on_two):
                await ws.close()
        finally:
            assert await one.stop() == 0
            assert await two.stop() == 0
