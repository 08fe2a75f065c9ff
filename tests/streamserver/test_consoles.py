"""The consoles' sockets and endpoints against the in-process server, real websockets.

A branch console gets a snapshot, then its own orders live (placed, ready, picked up),
its customers, its statement and its room's viewers; another branch's console gets none
of it. HQ's board ranks the branches as orders come. Who may open what is checked on
the upgrade (routes.py's access, the Origin), and bad input is a 4xx naming the field.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestServer
from yarl import URL

from commerce.ids import MerchantId
from streamserver.app import make_app
from streamserver.config import Config
from streamserver.keys import BUS
from streamserver.realtime import consolefeed
from tests.commerce_api import PASSWORD, Shop, buying, call, new_shopper, ok, open_shop
from tests.conftest import Seeded, Server, seed

DEADLINE_S = 10.0  # the feed recomputes once a second; the suite may run on a busy machine
HELLO = msgpack.packb({"v": 1, "type": "hello", "data": {}})


class Console:
    """A console's websocket and the frames it has read.

    Frames computed in one pass (statement, customers, board) come in no promised order,
    so `until` also looks at frames read earlier that no call has claimed yet.
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.got: list[dict[str, Any]] = []
        self.unclaimed: list[dict[str, Any]] = []

    async def until(self, kind: str, test: Any = lambda data: True) -> dict[str, Any]:
        """The data of the first unclaimed `kind` frame that passes `test`."""
        for frame in self.unclaimed:
            if frame["type"] == kind and test(frame["data"]):
                self.unclaimed.remove(frame)
                return dict(frame["data"])
        async with asyncio.timeout(DEADLINE_S):
            while True:
                message = await self.ws.receive()
                assert message.type is WSMsgType.BINARY, (message.type, message.data)
                frame = msgpack.unpackb(message.data)
                assert set(frame) == {"v", "type", "seq", "data"}, frame
                assert frame["v"] == 1
                self.got.append(frame)
                if frame["type"] == kind and test(frame["data"]):
                    return dict(frame["data"])
                self.unclaimed.append(frame)

    @property
    def seqs(self) -> list[int]:
        return [f["seq"] for f in self.got]


@asynccontextmanager
async def console(
    server: Server, path: str, headers: dict[str, str], **query: str
) -> AsyncIterator[Console]:
    async with server.http.ws_connect(
        server.url(path), headers=headers, params=query or None
    ) as ws:
        await ws.send_bytes(HELLO)
        yield Console(ws)


async def refused(server: Server, path: str, headers: dict[str, str], **query: str) -> int:
    try:
        async with server.http.ws_connect(server.url(path), headers=headers, params=query or None):
            pass
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status
    raise AssertionError(f"{path} opened for {headers}")


def branch_console(shop: Shop, i: int) -> str:
    return f"/ws/branches/{shop.seeded.branches[i]}/console"


def board(shop: Shop) -> str:
    return f"/ws/merchants/{shop.seeded.merchant}/board"


async def place(server: Server, shop: Shop, branch: int = 0, qty: int = 1) -> dict[str, Any]:
    shopper = await new_shopper(server, shop)
    body = {"lines": [{"sku": shop.sku, "qty": qty}], "fulfillment": "pickup"}
    order: dict[str, Any] = await ok(
        server, "POST", shop.room_orders(branch), body, buying(shopper)
    )
    return order


async def test_a_branch_console_sees_its_orders_live_and_another_branch_sees_none(
    server: Server, seeded: Seeded
) -> None:
    shop = await open_shop(server, seeded)
    async with (
        console(server, branch_console(shop, 0), shop.franchisee[0]) as mine,
        console(server, branch_console(shop, 1), shop.franchisee[1]) as other,
    ):
        snapshot = await mine.until("snapshot")
        assert snapshot["branch"]["id"] == seeded.branches[0]
        assert snapshot["show"]["id"] == seeded.show
        assert snapshot["show"]["room"]["url"] == f"/shows/{seeded.show}/rooms/{seeded.branches[0]}"
        assert snapshot["orders"] == []
        assert snapshot["customers"] == []
        assert snapshot["statement"]["sales"] == 0
        assert snapshot["series"]["amounts"] == []
        await other.until("snapshot")

        order = await place(server, shop, branch=0, qty=2)
        placed = await mine.until("order", lambda d: d["order"]["id"] == order["id"])
        assert placed["order"]["state"] == "placed"
        assert placed["order"]["pickup_code"] is None  # the counter asks the shopper for it
        customers = await mine.until("customers")
        assert [c["name"] for c in customers["customers"]] == ["Mei"]
        statement = await mine.until("statement", lambda d: d["series"]["amounts"])
        assert sum(statement["series"]["amounts"]) == 2 * shop.price

        path = f"/api/branches/{seeded.branches[0]}/orders/{order['id']}/ready"
        await ok(server, "POST", path, None, shop.franchisee[0])
        await mine.until("order", lambda d: d["order"]["state"] == "ready")
        await ok(
            server,
            "POST",
            f"/api/branches/{seeded.branches[0]}/pickups",
            {"code": order["pickup_code"]},
            shop.franchisee[0],
        )
        await mine.until("order", lambda d: d["order"]["state"] == "picked_up")
        collect = f"/api/branches/{seeded.branches[0]}/orders/{order['id']}/collect"
        await ok(server, "POST", collect, None, shop.franchisee[0])
        settled = await mine.until("statement", lambda d: d["statement"]["sales"] > 0)
        assert settled["statement"]["sales"] == 2 * shop.price
        assert settled["statement"]["commission"] == (2 * shop.price * 1000 + 5000) // 10_000

        # Branch 1's console got its snapshot and nothing of branch 0's order since.
        late = await place(server, shop, branch=1)
        theirs = await other.until("order")
        assert theirs["order"]["id"] == late["id"]
        seen = [f["data"]["order"]["id"] for f in other.got if f["type"] == "order"]
        assert order["id"] not in seen
        assert mine.seqs == sorted(mine.seqs)
        assert len(set(mine.seqs)) == len(mine.seqs)


async def test_a_reconnecting_console_gets_the_orders_it_missed_in_a_fresh_snapshot(
    server: Server, seeded: Seeded
) -> None:
    shop = await open_shop(server, seeded)
    order = await place(server, shop)
    async with console(server, branch_console(shop, 0), shop.franchisee[0]) as again:
        snapshot = await again.until("snapshot")
        assert [o["id"] for o in snapshot["orders"]] == [order["id"]]
        assert [c["name"] for c in snapshot["customers"]] == ["Mei"]
        assert snapshot["series"]["amounts"][-1] == shop.price


async def test_the_board_ranks_branches_by_sales_as_orders_come(
    server: Server, seeded: Seeded
) -> None:
    shop = await open_shop(server, seeded)
    async with console(server, board(shop), shop.operator) as hq:
        snapshot = await hq.until("snapshot")
        assert snapshot["show"]["id"] == seeded.show
        assert {r["branch"] for r in snapshot["rows"]} == set(seeded.branches)
        assert snapshot["totals"] == {"viewers": 0, "orders": 0, "sales": 0, "settled": 0}

        await place(server, shop, branch=1, qty=3)
        ranked = await hq.until("board", lambda d: d["totals"]["orders"] == 1)
        first, second = ranked["rows"]
        assert (first["branch"], first["rank"], first["orders"]) == (seeded.branches[1], 1, 1)
        assert first["sales"] == 3 * shop.price
        assert second["sales"] == 0
        assert ranked["totals"]["sales"] == 3 * shop.price


async def test_consoles_count_the_rooms_viewers(server: Server, seeded: Seeded) -> None:
    shop = await open_shop(server, seeded)
    async with (
        console(server, branch_console(shop, 0), shop.franchisee[0]) as mine,
        console(server, board(shop), shop.operator) as hq,
    ):
        await mine.until("snapshot")
        room = f"/ws/shows/{seeded.show}/rooms/{seeded.branches[0]}"
        async with server.http.ws_connect(server.url(room)) as shopper:
            await shopper.send_bytes(HELLO)
            assert (await mine.until("viewers"))["count"] == 1
            watched = await hq.until("board", lambda d: d["totals"]["viewers"] == 1)
            assert [r["viewers"] for r in watched["rows"] if r["branch"] == seeded.branches[0]] == [
                1
            ]
        assert (await mine.until("viewers"))["count"] == 0


async def test_consoles_follow_the_show_as_it_ends(server: Server, seeded: Seeded) -> None:
    shop = await open_shop(server, seeded)
    async with console(server, branch_console(shop, 0), shop.franchisee[0]) as mine:
        assert (await mine.until("snapshot"))["show"]["status"] == "scheduled"
        host = {"Authorization": f"Bearer {seeded.host_token}"}
        await ok(server, "POST", f"/api/shows/{seeded.show}/end", None, host)
        ended = await mine.until("show", lambda d: d["show"]["status"] == "ended")
        assert ended["show"]["id"] == seeded.show


async def test_console_sockets_refuse_other_branches_roles_and_foreign_pages(
    server: Server, seeded: Seeded
) -> None:
    shop = await open_shop(server, seeded)
    shopper = await new_shopper(server, shop)
    path = branch_console(shop, 0)
    assert await refused(server, path, shop.franchisee[1]) == 401
    assert await refused(server, path, shopper) == 401
    assert await refused(server, path, {}) == 401
    assert await refused(server, board(shop), shop.franchisee[0]) == 401
    assert await refused(server, board(shop), {"Origin": "http://evil.example"}) == 401
    foreign = {**shop.franchisee[0], "Origin": "http://evil.example"}
    assert await refused(server, path, foreign) == 403
    own = {**shop.franchisee[0], "Origin": server.base}
    async with console(server, path, own) as ok_console:
        await ok_console.until("snapshot")


async def test_bad_input_to_the_consoles_is_a_4xx_naming_the_field(
    server: Server, seeded: Seeded
) -> None:
    shop = await open_shop(server, seeded)
    path = branch_console(shop, 0)
    for bad in ("yesterday", str(int(time.time() * 1000) + 3_600_000)):
        status, body = await call(server, "GET", f"{path}?from={bad}", None, shop.franchisee[0])
        assert (status, body["field"]) == (400, "from"), body
    status, body = await call(server, "GET", path, None, shop.franchisee[0])
    assert (status, body["field"]) == (400, "Upgrade"), body
    async with console(server, path, shop.franchisee[0]) as mine:
        await mine.until("snapshot")
        await mine.ws.send_bytes(b"\xc1 not msgpack")
        assert "msgpack" in (await mine.until("error"))["reason"]


async def test_a_console_must_say_hello_first(server: Server, seeded: Seeded) -> None:
    shop = await open_shop(server, seeded)
    async with server.http.ws_connect(
        server.url(branch_console(shop, 0)), headers=shop.franchisee[0]
    ) as ws:
        await ws.send_bytes(msgpack.packb({"v": 1, "type": "heartbeat", "data": {}}))
        message = await ws.receive(timeout=DEADLINE_S)
        assert message.type is WSMsgType.CLOSE
        assert ws.close_code == 1008


async def test_hq_lists_its_shows_newest_first_without_their_host_tokens(
    server: Server, seeded: Seeded
) -> None:
    op = {"Authorization": f"Bearer {seeded.operator_token}"}
    m = f"/api/merchants/{seeded.merchant}"
    newer = await ok(server, "POST", f"{m}/shows", {"title": "Winter"}, op)
    listed = (await ok(server, "GET", f"{m}/shows", None, op))["shows"]
    assert [s["id"] for s in listed] == [newer["id"], seeded.show]
    assert listed[0]["whip_url"] == f"/whip/{newer['id']}"
    assert listed[0]["host_url"] == f"/shows/{newer['id']}/host"
    assert [r["branch"] for r in listed[0]["rooms"]] == seeded.branches
    assert "host_token" not in listed[0]


async def test_the_host_sees_orders_per_minute_for_each_pinned_card(
    server: Server, seeded: Seeded
) -> None:
    shop = await open_shop(server, seeded)
    host = {"Authorization": f"Bearer {seeded.host_token}"}
    card = await ok(server, "POST", f"/api/shows/{seeded.show}/cards", {"sku": shop.sku}, host)
    pace_path = f"/api/shows/{seeded.show}/pace"
    before = await ok(server, "GET", pace_path, None, host)
    assert before == {
        "window_s": 60,
        "cards": [{"card": card["id"], "sku": shop.sku, "orders": 0, "units": 0}],
    }
    async with console(server, board(shop), shop.operator) as hq:  # the same node's feed
        await hq.until("snapshot")
        await place(server, shop, branch=0, qty=2)
        await place(server, shop, branch=1, qty=1)
        await hq.until("board", lambda d: d["totals"]["orders"] == 2)  # both heard of
    after = (await ok(server, "GET", pace_path, None, host))["cards"][0]
    assert (after["orders"], after["units"]) == (2, 3)
    status, _ = await call(server, "GET", pace_path, None, shop.franchisee[0])
    assert status == 401


async def test_console_pages_send_strangers_to_sign_in_and_come_back(
    server: Server, seeded: Seeded
) -> None:
    shop = await open_shop(server, seeded)
    page = f"/branches/{seeded.branches[0]}/console"

    async def get(path: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
        async with server.http.get(server.url(path), headers=headers, allow_redirects=False) as r:
            await r.read()
            return r

    for stranger in ({}, shop.franchisee[1], await new_shopper(server, shop)):
        r = await get(page, stranger)
        assert r.status == 302
        location = URL(r.headers["Location"])
        assert location.path == "/signin"
        assert location.query["next"] == page
    r = await get(page, shop.franchisee[0])
    assert r.status == 200
    assert r.content_type == "text/html"
    r = await get("/branches/b_nosuchbranch00/console", shop.franchisee[0])
    assert r.status == 302
    assert (await get("/hq", shop.franchisee[0])).status == 302
    hq_user = {"username": "hq", "password": PASSWORD, "role": "hq_operator"}
    await ok(server, "POST", f"/api/merchants/{seeded.merchant}/users", hq_user, shop.operator)
    signed_in = await ok(
        server,
        "POST",
        "/api/sessions",
        {"merchant": seeded.merchant, "username": "hq", "password": PASSWORD},
    )
    hq = {"Authorization": f"Bearer {signed_in['token']}"}
    assert (await get("/hq", hq)).status == 200
    assert (await get(page, hq)).status == 200  # HQ may open every branch's console


async def test_the_board_on_one_node_counts_an_order_placed_on_another(
    tmp_path: Path, redis_url: str
) -> None:
    """Two servers on one Redis: the order's event crosses the bus to the other's feed."""
    servers = []
    async with aiohttp.ClientSession() as http:
        for name in ("one", "two"):
            config = Config(data_dir=tmp_path / name, ice_hosts=("127.0.0.1",), redis_url=redis_url)
            test_server = TestServer(make_app(config), host="127.0.0.1")
            await test_server.start_server()
            base = str(test_server.make_url("")).rstrip("/")
            servers.append((test_server, Server(base, test_server.app, http)))
        try:
            one, two = (s for _, s in servers)
            shop = await open_shop(one, await seed(one))
            async with console(two, board(shop), shop.operator) as hq:
                assert (await hq.until("snapshot"))["totals"]["orders"] == 0
                await place(one, shop, branch=1, qty=2)
                ranked = await hq.until("board", lambda d: d["totals"]["orders"] == 1)
                assert ranked["rows"][0]["branch"] == shop.seeded.branches[1]
                assert ranked["rows"][0]["sales"] == 2 * shop.price
        finally:
            for test_server, _ in servers:
                await test_server.close()


async def test_a_console_is_closed_when_its_session_ends(
    server: Server, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consolefeed, "REFRESH_S", 0.2)  # sessions are checked this often
    shop = await open_shop(server, seeded)
    async with console(server, branch_console(shop, 0), shop.franchisee[0]) as mine:
        await mine.until("snapshot")
        await ok(server, "DELETE", "/api/sessions/me", None, shop.franchisee[0])
        async with asyncio.timeout(DEADLINE_S):
            message = await mine.ws.receive()
            while message.type is WSMsgType.BINARY:  # frames already on their way
                message = await mine.ws.receive()
        assert message.type is WSMsgType.CLOSE
        assert mine.ws.close_code == 1008
    assert await refused(server, branch_console(shop, 0), shop.franchisee[0]) == 401


async def test_a_feed_that_falls_behind_starts_its_consoles_over_from_a_snapshot(
    server: Server, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consolefeed, "QUEUE_MAX", 1)
    shop = await open_shop(server, seeded)
    order = await place(server, shop)
    async with console(server, branch_console(shop, 0), shop.franchisee[0]) as mine:
        await mine.until("snapshot")
        event = {"type": "order", "order": order["id"], "branch": seeded.branches[0]}
        bus = server.app[BUS]
        for _ in range(2):  # no await yields between these: the second finds the queue full
            await bus.publish_personal(MerchantId(seeded.merchant), event)
        async with asyncio.timeout(DEADLINE_S):
            message = await mine.ws.receive()
            while message.type is WSMsgType.BINARY:
                message = await mine.ws.receive()
        assert message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR)
    async with console(server, branch_console(shop, 0), shop.franchisee[0]) as again:
        snapshot = await again.until("snapshot")
        assert [o["id"] for o in snapshot["orders"]] == [order["id"]]
        await place(server, shop)  # the new feed hears of orders again
        await again.until("order", lambda d: d["order"]["id"] != order["id"])
