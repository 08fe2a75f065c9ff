"""Branch-room websockets end to end: real aiohttp clients against the in-process server.

What a room's sockets see (DESIGN.md "Realtime channel"): a snapshot on joining, the
host's cards rendered with the room's own stock, coalesced stock frames, the shopper's
own order frames, consecutive sequence numbers and resuming by them, bad input answered
and bounded, and a stalled client that delays no one. Every wait has a deadline; no
sleep stands in for synchronisation.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import os
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import pytest
from aiohttp import WSMsgType

from commerce.ids import ShowId
from streamserver.bus.port import BACKLOG_MAX, Published
from streamserver.config import Config
from streamserver.keys import BUS, HUB, STOCK_FEED
from streamserver.realtime import hub as hub_module
from streamserver.realtime.fanout import NOTSENT_LOWAT_BYTES, SEND_BUFFER_BYTES_MAX
from streamserver.realtime.hub import ERRORS_MAX
from streamserver.realtime.sendpool import SendPool
from tests.commerce_api import Shop, buying, call, new_shopper, ok, open_shop
from tests.conftest import Seeded, Server

DEADLINE_S = 5.0  # generous: the suite may run on a busy machine
ALLOWED_ORIGIN = "https://shop.example"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(
        data_dir=tmp_path / "data", ice_hosts=("127.0.0.1",), allowed_origins=(ALLOWED_ORIGIN,)
    )


def hello(last_seq: int | None = None) -> bytes:
    data: dict[str, Any] = {} if last_seq is None else {"last_seq": last_seq}
    packed: bytes = msgpack.packb({"v": 1, "type": "hello", "data": data})
    return packed


def unpack(data: bytes) -> dict[str, Any]:
    frame: dict[str, Any] = msgpack.unpackb(data)
    assert set(frame) == {"v", "type", "seq", "data"}, frame
    assert frame["v"] == 1
    assert isinstance(frame["seq"], int)
    return frame


@dataclass
class Socket:
    """One client websocket in a branch room, and every frame it has read.

    Viewer counts come on the hub's own clock (every ~2 s when a room's count changed),
    so on a slow machine they can fall between any two frames: unless a test asks for
    them, they are set aside in `viewers` rather than returned.
    """

    ws: aiohttp.ClientWebSocketResponse
    got: list[dict[str, Any]] = field(default_factory=list)
    viewers: list[dict[str, Any]] = field(default_factory=list)
    with_viewers: bool = False

    def _keep(self, frame: dict[str, Any]) -> bool:
        if frame["type"] == "viewers" and not self.with_viewers:
            self.viewers.append(frame)
            return False
        self.got.append(frame)
        return True

    async def frame(self, within: float = DEADLINE_S) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while True:
                message = await self.ws.receive()
                assert message.type is WSMsgType.BINARY, (message.type, message.data, message.extra)
                frame = unpack(message.data)
                if self._keep(frame):
                    return frame

    async def until(
        self, kind: str, within: float = DEADLINE_S, **match: Any
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Read up to the first `kind` frame whose data has `match`: it, and what came before."""
        before: list[dict[str, Any]] = []
        async with asyncio.timeout(within):
            while True:
                frame = await self.frame(within=within)
                if frame["type"] == kind and all(
                    frame["data"].get(k) == v for k, v in match.items()
                ):
                    return frame, before
                before.append(frame)

    async def closed(self, within: float = DEADLINE_S) -> int | None:
        """Read until the server closes; its close code (frames on the way are kept)."""
        async with asyncio.timeout(within):
            while True:
                message = await self.ws.receive()
                if message.type is WSMsgType.BINARY:
                    self._keep(unpack(message.data))
                    continue
                assert message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED), message
                return self.ws.close_code

    async def send(self, data: bytes) -> None:
        await self.ws.send_bytes(data)


@dataclass
class Rooms:
    """Opens sockets in the seeded show's branch rooms and closes them after the test."""

    server: Server
    seeded: Seeded
    opened: list[Socket] = field(default_factory=list)

    def path(self, branch: int) -> str:
        return f"/ws/shows/{self.seeded.show}/rooms/{self.seeded.branches[branch]}"

    async def open(
        self,
        branch: int = 0,
        *,
        headers: dict[str, str] | None = None,
    ) -> Socket:
        ws = await self.server.http.ws_connect(self.server.url(self.path(branch)), headers=headers)
        sock = Socket(ws)
        self.opened.append(sock)
        return sock

    async def join(
        self,
        branch: int = 0,
        *,
        last_seq: int | None = None,
        headers: dict[str, str] | None = None,
        expect_snapshot: bool = True,
    ) -> Socket:
        sock = await self.open(branch, headers=headers)
        await sock.send(hello(last_seq))
        if expect_snapshot:
            snapshot = await sock.frame()
            assert snapshot["type"] == "snapshot", snapshot
        return sock

    async def close(self) -> None:
        async with asyncio.timeout(DEADLINE_S):
            await asyncio.gather(*(s.ws.close() for s in self.opened), return_exceptions=True)


@pytest.fixture
async def rooms(server: Server, seeded: Seeded) -> AsyncIterator[Rooms]:
    opened = Rooms(server, seeded)
    yield opened
    await opened.close()


async def settled_shop(server: Server, seeded: Seeded, stock: tuple[int, int]) -> Shop:
    """A trading shop whose stock receipts are already through the stock feed, so that
    no late stock event (for a card pinned meanwhile) lands in the middle of a test."""
    shop = await open_shop(server, seeded, stock=stock)
    await server.app[STOCK_FEED].flush()
    return shop


@pytest.fixture
async def shop(server: Server, seeded: Seeded) -> Shop:
    return await settled_shop(server, seeded, (7, 3))


def host(seeded: Seeded) -> dict[str, str]:
    return {"Authorization": f"Bearer {seeded.host_token}"}


async def pin(server: Server, shop: Shop, **terms: Any) -> dict[str, Any]:
    path = f"/api/shows/{shop.seeded.show}/cards"
    card: dict[str, Any] = await ok(
        server, "POST", path, {"sku": shop.sku, **terms}, host(shop.seeded)
    )
    return card


async def patch(server: Server, shop: Shop, card: str, **terms: Any) -> dict[str, Any]:
    path = f"/api/shows/{shop.seeded.show}/cards/{card}"
    updated: dict[str, Any] = await ok(server, "PATCH", path, terms, host(shop.seeded))
    return updated


async def buy(
    server: Server, shop: Shop, shopper: dict[str, str], qty: int = 1, branch: int = 0
) -> dict[str, Any]:
    body = {"lines": [{"sku": shop.sku, "qty": qty}], "fulfillment": "pickup"}
    order: dict[str, Any] = await ok(
        server, "POST", shop.room_orders(branch), body, buying(shopper)
    )
    return order


def only_card(frame: dict[str, Any]) -> dict[str, Any]:
    cards = frame["data"]["cards"]
    assert len(cards) == 1, cards
    card: dict[str, Any] = cards[0]
    return card


def seqs(frames: list[dict[str, Any]]) -> list[int]:
    return [f["seq"] for f in frames]


# -- joining --------------------------------------------------------------------------


async def test_joining_a_room_gets_a_snapshot_rendered_for_its_branch(
    server: Server, shop: Shop, rooms: Rooms
) -> None:
    card = await pin(server, shop, price=999, limit_per_shopper=2)
    a, b = shop.seeded.branches
    here = await rooms.open(0)
    await here.send(hello())
    snapshot = await here.frame()
    there = await rooms.open(1)
    await there.send(hello())
    snapshot_b = await there.frame()

    assert snapshot["type"] == "snapshot"
    last = await server.app[BUS].last_seq(ShowId(shop.seeded.show))
    assert snapshot["seq"] == snapshot_b["seq"] == last  # the card was the show's last event
    data = snapshot["data"]
    assert data["show"] == {"id": shop.seeded.show, "title": "Autumn launch", "status": "scheduled"}
    assert data["branch"] == {"id": a, "name": "Xuhui", "is_open": True}
    assert snapshot_b["data"]["branch"] == {"id": b, "name": "Pudong", "is_open": True}
    shown = only_card(snapshot)
    assert shown == {
        "id": card["id"],
        "sku": shop.sku,
        "title": "250 g",
        "list_price": 1999,
        "price": 999,
        "ends_at_ms": None,
        "limit_per_shopper": 2,
        "available_here": 7,
        "pickup": True,
        "delivery": True,
        "ended": False,
    }
    assert only_card(snapshot_b)["available_here"] == 3  # each room its own stock
    assert isinstance(data["viewers"], int)
    assert isinstance(snapshot_b["data"]["viewers"], int)


async def test_the_snapshots_viewer_count_includes_the_joiner(
    server: Server, seeded: Seeded, rooms: Rooms
) -> None:
    first = await rooms.join(0)
    second = await rooms.join(0)
    assert first.got[0]["data"]["viewers"] == 1
    assert second.got[0]["data"]["viewers"] == 2


async def test_a_show_without_cards_has_an_empty_snapshot_at_the_buses_position(
    server: Server, seeded: Seeded, rooms: Rooms
) -> None:
    sock = await rooms.join(1)
    assert sock.got[0]["seq"] == await server.app[BUS].last_seq(ShowId(seeded.show))
    assert sock.got[0]["data"]["cards"] == []


# -- the host's cards -----------------------------------------------------------------


async def test_cards_reach_every_room_with_its_own_stock_and_set_the_price_paid(
    server: Server, shop: Shop, rooms: Rooms
) -> None:
    here, there = await rooms.join(0), await rooms.join(1)
    mei = await new_shopper(server, shop)

    card = await pin(server, shop, price=1500, limit_per_shopper=3)
    shown_a, shown_b = await here.frame(), await there.frame()
    assert shown_a["type"] == shown_b["type"] == "card.shown"
    assert shown_a["seq"] == shown_b["seq"] == here.got[0]["seq"] + 1
    assert shown_a["data"]["id"] == card["id"]
    assert (shown_a["data"]["price"], shown_a["data"]["limit_per_shopper"]) == (1500, 3)
    assert (shown_a["data"]["available_here"], shown_b["data"]["available_here"]) == (7, 3)

    updated = await patch(server, shop, card["id"], price=1200, title="Oolong, flash")
    changed_a, changed_b = await here.frame(), await there.frame()
    assert changed_a["type"] == changed_b["type"] == "card.updated"
    assert changed_a["seq"] == shown_a["seq"] + 1
    assert (changed_a["data"]["price"], changed_a["data"]["title"]) == (1200, "Oolong, flash")
    assert changed_a["data"]["list_price"] == 1999
    assert (changed_a["data"]["available_here"], changed_b["data"]["available_here"]) == (7, 3)
    assert updated["price"] == 1200

    order = await buy(server, shop, mei, qty=2)
    assert order["total"] == 2 * 1200  # what the card showed is what the shopper pays
    assert order["lines"][0]["unit_price"] == 1200
    await here.until("stock")  # the purchase's stock frame, before the card goes

    status, _ = await call(
        server,
        "DELETE",
        f"/api/shows/{shop.seeded.show}/cards/{card['id']}",
        None,
        host(shop.seeded),
    )
    assert status == 204
    hidden_a, _ = await here.until("card.hidden")
    hidden_b, _ = await there.until("card.hidden")
    assert hidden_a["data"] == hidden_b["data"] == {"id": card["id"]}
    assert hidden_a["seq"] == hidden_b["seq"]

    order = await buy(server, shop, mei, qty=1)
    assert order["total"] == 1999  # unpinned: back to the list price

    late = await rooms.join(0)
    assert late.got[0]["data"]["cards"] == []
    assert late.got[0]["seq"] == hidden_a["seq"]


# -- purchases: stock per room, order frames per shopper --------------------------------


def as_cookie(shopper: dict[str, str]) -> dict[str, str]:
    token = shopper["Authorization"].removeprefix("Bearer ")
    return {"Cookie": f"lianbo_session={token}"}


async def test_a_purchase_moves_stock_in_every_room_and_tells_only_the_buyer(
    server: Server, shop: Shop, rooms: Rooms
) -> None:
    card = await pin(server, shop)
    mei, lin = await new_shopper(server, shop, "Mei"), await new_shopper(server, shop, "Lin")
    mei_here = await rooms.join(0, headers=mei)  # a bearer token on the upgrade
    lin_here = await rooms.join(0, headers=as_cookie(lin))  # the browser's session cookie
    guest_here = await rooms.join(0)
    guest_there = await rooms.join(1)
    room_a, everyone = (
        [mei_here, lin_here, guest_here],
        [mei_here, lin_here, guest_here, guest_there],
    )

    order = await buy(server, shop, mei, qty=2)
    placed, before = await mei_here.until("order")
    assert placed["data"]["order"] == order["id"]
    assert placed["data"]["state"] == "placed"
    assert placed["data"]["shopper"] == order["shopper"]
    assert placed["data"]["branch"] == shop.seeded.branches[0]
    assert placed["data"]["cash_due"] == 2 * 1999
    assert before == [] or {f["type"] for f in before} == {"stock"}

    for sock in room_a:
        stock, _ = await sock.until("stock")
        assert stock["data"]["sku"] == shop.sku
        assert stock["data"]["cards"] == [
            {"id": card["id"], "available_here": 5, "pickup": True, "delivery": True}
        ]
    stock_b, _ = await guest_there.until("stock")
    assert stock_b["data"]["cards"][0]["available_here"] == 3  # its own level, unchanged
    assert stock_b["seq"] == stock["seq"]  # one event, rendered per room

    # A marker event: whatever was written for the purchase is before it on every socket.
    await patch(server, shop, card["id"], price=1998)
    for sock in everyone:
        await sock.until("card.updated", price=1998)
    assert [
        f for f in lin_here.got + guest_here.got + guest_there.got if f["type"] == "order"
    ] == []

    ready = await ok(
        server,
        "POST",
        f"/api/branches/{shop.seeded.branches[0]}/orders/{order['id']}/ready",
        headers=shop.franchisee[0],
    )
    assert ready["state"] == "ready"
    update, _ = await mei_here.until("order", state="ready")
    assert update["data"]["order"] == order["id"]

    lins = await buy(server, shop, lin, qty=1)  # the cookie socket gets its own order
    mine, _ = await lin_here.until("order")
    assert mine["data"]["order"] == lins["id"]
    await patch(server, shop, card["id"], price=1997)
    for sock in everyone:
        await sock.until("card.updated", price=1997)
    orders_seen = [f["data"]["order"] for f in mei_here.got if f["type"] == "order"]
    assert orders_seen == [order["id"], order["id"]]


async def test_a_burst_of_purchases_is_coalesced_and_the_last_frame_has_the_final_level(
    server: Server, seeded: Seeded, rooms: Rooms
) -> None:
    shop = await settled_shop(server, seeded, (60, 4))
    await pin(server, shop)
    here, there = await rooms.join(0), await rooms.join(1)
    shoppers = [await new_shopper(server, shop, f"S{i}") for i in range(5)]
    started = time.monotonic()
    orders = await asyncio.gather(*(buy(server, shop, shoppers[i % 5]) for i in range(50)))
    assert len({o["id"] for o in orders}) == 50
    final, _ = await here.until("stock", within=DEADLINE_S)
    while only_card(final)["available_here"] != 10:
        final, _ = await here.until("stock")
    elapsed = time.monotonic() - started
    stock_frames = [f for f in here.got if f["type"] == "stock"]
    levels = [only_card(f)["available_here"] for f in stock_frames]
    assert len(stock_frames) < 50
    assert len(stock_frames) <= elapsed / 0.25 + 3, (len(stock_frames), elapsed)  # a few a second
    assert levels == sorted(levels, reverse=True)  # never back up: the latest value goes out

    # Nothing stale comes after the final level; the other room saw its own level throughout.
    card = only_card(here.got[0])
    await patch(server, shop, card["id"], price=1500)
    _, after = await here.until("card.updated", price=1500)
    assert all(only_card(f)["available_here"] == 10 for f in after if f["type"] == "stock")
    _, seen_b = await there.until("card.updated", price=1500)
    assert {only_card(f)["available_here"] for f in seen_b if f["type"] == "stock"} <= {4}
    assert seqs(here.got[1:]) == seqs(there.got[1:])  # the same events, in the same order


# -- sequence numbers and resuming -------------------------------------------------------


@pytest.fixture
def no_viewer_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before `server`: the hub's viewer counts wait an hour, so no pass of theirs
    lands in the middle of a test that counts passes."""
    monkeypatch.setattr(hub_module, "VIEWERS_INTERVAL_S", 3600.0)


async def test_frames_queued_in_one_tick_go_out_in_one_write_per_socket_as_separate_frames(
    no_viewer_counts: None, server: Server, shop: Shop, rooms: Rooms
) -> None:
    card = await pin(server, shop)
    socks = [await rooms.join(0), await rooms.join(0), await rooms.join(1)]
    hub, bus, show = server.app[HUB], server.app[BUS], ShowId(shop.seeded.show)
    fanout = hub._shows[show].fanout
    assert fanout is not None
    passes, writes = fanout.passes, fanout.writes
    start = await bus.last_seq(show)
    for i in range(10):  # the local bus never yields: all ten queue before the writer runs
        await bus.publish(show, synthetic_update(card, shop, 100 + i, f"t{i}"))
    for sock in socks:
        got = [await sock.frame() for _ in range(10)]
        assert seqs(got) == list(range(start + 1, start + 11))
        assert [f["data"]["price"] for f in got] == list(range(100, 110))
        assert [f["data"]["title"] for f in got] == [f"t{i}" for i in range(10)]
    assert fanout.passes == passes + 1
    assert fanout.writes == writes + len(socks)  # one write per socket, not one per frame


async def test_a_socket_joining_while_frames_wait_gets_none_its_snapshot_covers(
    no_viewer_counts: None,
    server: Server,
    shop: Shop,
    rooms: Rooms,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Events are applied at once but written a tick later: a snapshot taken in between
    already shows them, so the socket must not get their frames as well."""
    card = await pin(server, shop)
    early = await rooms.join(0)
    hub, bus, show = server.app[HUB], server.app[BUS], ShowId(shop.seeded.show)
    start = await bus.last_seq(show)
    real_state = hub._state

    async def state_after_an_event(show_now: Any) -> Any:
        # Publish right before the join's snapshot, with no yield after it: the frame
        # is queued for the room and not yet written when the socket enters it.
        monkeypatch.undo()  # once
        await bus.publish(show, synthetic_update(card, shop, 500, "queued"))
        return await real_state(show_now)

    monkeypatch.setattr(hub, "_state", state_after_an_event)
    late = await rooms.join(0)
    assert late.got[0]["seq"] == start + 1
    assert only_card(late.got[0])["price"] == 500
    await bus.publish(show, synthetic_update(card, shop, 501, "next"))
    nxt = await late.frame()
    assert (nxt["seq"], nxt["data"]["price"]) == (start + 2, 501)  # nothing in between
    got = [await early.frame(), await early.frame()]
    assert seqs(got) == [start + 1, start + 2]
    assert [f["data"]["price"] for f in got] == [500, 501]


async def test_room_frames_have_consecutive_seqs_and_resume_fills_exactly_the_gap(
    server: Server, shop: Shop, rooms: Rooms
) -> None:
    card = await pin(server, shop)
    mei = await new_shopper(server, shop)
    here, there = await rooms.join(0), await rooms.join(1)
    for price in (1900, 1800, 1700):
        await patch(server, shop, card["id"], price=price)
    await here.until("card.updated", price=1700)
    await there.until("card.updated", price=1700)
    start = here.got[0]["seq"]
    assert seqs(here.got) == list(range(start, start + 4))
    assert seqs(there.got) == seqs(here.got)
    k = here.got[-1]["seq"]
    await here.ws.close()
    await there.ws.close()

    # Missed while away: price changes, a purchase in room A (stock), more changes.
    await patch(server, shop, card["id"], price=1600)
    await buy(server, shop, mei, qty=3)
    feed_done = await wait_for_seq(server, shop.seeded.show, k + 2)
    await patch(server, shop, card["id"], price=1500, title="Last call")
    last = await server.app[BUS].last_seq(ShowId(shop.seeded.show))
    assert last == feed_done + 1

    back_a = await rooms.join(0, last_seq=k, expect_snapshot=False)
    back_b = await rooms.join(1, last_seq=k, expect_snapshot=False)
    for sock, here_level in ((back_a, 4), (back_b, 3)):
        replayed = [await sock.frame() for _ in range(last - k)]
        assert seqs(replayed) == list(range(k + 1, last + 1))
        assert [f["type"] for f in replayed] == ["card.updated", "stock", "card.updated"]
        assert only_card(replayed[1])["available_here"] == here_level  # rendered for the room
        assert replayed[-1]["data"]["title"] == "Last call"
    # ... and then live ones, with no gap and no duplicate.
    await patch(server, shop, card["id"], price=1400)
    for sock in (back_a, back_b):
        live = await sock.frame()
        assert (live["type"], live["seq"], live["data"]["price"]) == (
            "card.updated",
            last + 1,
            1400,
        )
        assert seqs(sock.got) == list(range(k + 1, last + 2))

    # Up to date: nothing to replay, no snapshot, just what comes next.
    current = await rooms.join(0, last_seq=last + 1, expect_snapshot=False)
    await patch(server, shop, card["id"], price=1300)
    nxt = await current.frame()
    assert (nxt["type"], nxt["seq"]) == ("card.updated", last + 2)


async def wait_for_seq(server: Server, show: str, at_least: int) -> int:
    """The show's bus position once it reaches `at_least` (the stock feed publishes late)."""
    heard = asyncio.Event()
    bus = server.app[BUS]
    unsubscribe = bus.subscribe(
        ShowId(show), lambda p: heard.set() if p.seq >= at_least else None, after_seq=at_least - 1
    )
    try:
        async with asyncio.timeout(DEADLINE_S):
            await heard.wait()
    finally:
        unsubscribe()
    return await bus.last_seq(ShowId(show))


def synthetic_update(card: dict[str, Any], shop: Shop, price: int, title: str) -> dict[str, Any]:
    """A card.updated event as the cards API publishes it, without the HTTP round trip."""
    a, b = shop.seeded.branches
    body = {k: v for k, v in card.items() if k != "stock_left"}
    return {
        "type": "card.updated",
        "card": {**body, "price": price, "title": title},
        "stock": {a: 7, b: 3},
    }


async def test_resuming_from_before_the_backlog_or_beyond_the_last_seq_gets_a_snapshot(
    server: Server, shop: Shop, rooms: Rooms
) -> None:
    card = await pin(server, shop)
    first = await rooms.join(0)
    k = first.got[0]["seq"]
    await first.ws.close()
    # Someone stays in the other room, so this node keeps following the show while
    # the synthetic events (which, unlike real ones, leave the store as it was) go by.
    await rooms.join(1)
    bus, show = server.app[BUS], ShowId(shop.seeded.show)
    for i in range(BACKLOG_MAX + 10):
        await bus.publish(show, synthetic_update(card, shop, 1000 + i, f"t{i}"))
    last = await bus.last_seq(show)
    assert last == k + BACKLOG_MAX + 10

    stale = await rooms.join(0, last_seq=k)
    snapshot = stale.got[0]
    assert snapshot["seq"] == last
    assert only_card(snapshot)["price"] == 1000 + BACKLOG_MAX + 9
    assert only_card(snapshot)["title"] == f"t{BACKLOG_MAX + 9}"

    beyond = await rooms.join(1, last_seq=last + 50)  # a number this server never gave
    assert beyond.got[0]["seq"] == last
    assert only_card(beyond.got[0])["available_here"] == 3

    oldest_kept = last - BACKLOG_MAX + 1
    just_in = await rooms.join(0, last_seq=oldest_kept - 1, expect_snapshot=False)
    replayed = [await just_in.frame() for _ in range(BACKLOG_MAX)]
    assert seqs(replayed) == list(range(oldest_kept, last + 1))
    assert {f["type"] for f in replayed} == {"card.updated"}


async def test_a_resume_over_a_card_shown_and_hidden_meanwhile_leaves_no_hole_in_the_seqs(
    server: Server, shop: Shop, rooms: Rooms
) -> None:
    """Every missed number is accounted for: a frame for each, or a fresh snapshot.

    A client that sees seq k+3 after k cannot tell "nothing to show" from "lost", and a
    client that resumes on a gap would ask for the same hole again.
    """
    first = await rooms.join(0)
    k = first.got[0]["seq"]
    await first.ws.close()
    card = await pin(server, shop)  # k+1
    await patch(server, shop, card["id"], price=1500)  # k+2
    status, _ = await call(
        server,
        "DELETE",
        f"/api/shows/{shop.seeded.show}/cards/{card['id']}",
        None,
        host(shop.seeded),
    )  # k+3
    assert status == 204
    back = await rooms.join(0, last_seq=k, expect_snapshot=False)
    second = await pin(server, shop)  # k+4, live: the end of what we read
    _, before = await back.until("card.shown", id=second["id"])
    got = [*before, back.got[-1]]
    if got[0]["type"] == "snapshot":
        assert got[0]["seq"] == k + 3
        assert seqs(got[1:]) == [k + 4]
    else:
        assert seqs(got) == [k + 1, k + 2, k + 3, k + 4], [(f["type"], f["seq"]) for f in got]


async def test_a_resume_never_misses_an_event_applied_while_the_bus_answers(
    server: Server, shop: Shop, rooms: Rooms, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bus whose `since` really waits (Redis): an event can land meanwhile.

    The resuming socket is not in the room yet when that event is fanned out, and the
    bus's answer was read before it was published: the socket must still get it.
    """
    card = await pin(server, shop)
    first = await rooms.join(0)
    k = first.got[0]["seq"]
    await first.ws.close()
    await patch(server, shop, card["id"], price=1800)
    bus = server.app[BUS]
    real_since = bus.since

    answered = asyncio.Event()

    async def since_while_an_event_lands(show_id: ShowId, after_seq: int) -> list[Published] | None:
        answer = await real_since(show_id, after_seq)
        monkeypatch.undo()  # once
        await bus.publish(show_id, synthetic_update(card, shop, 1700, "landed meanwhile"))
        answered.set()
        return answer

    monkeypatch.setattr(bus, "since", since_while_an_event_lands)
    back = await rooms.join(0, last_seq=k, expect_snapshot=False)
    async with asyncio.timeout(DEADLINE_S):
        await answered.wait()
    await patch(server, shop, card["id"], price=1600)
    _, before = await back.until("card.updated", price=1600)
    got = [*before, back.got[-1]]
    if got[0]["type"] == "snapshot":  # a fresh start is also acceptable
        got = got[1:]
        assert got[-1]["seq"] == k + 3
    else:
        assert seqs(got) == [k + 1, k + 2, k + 3], [(f["seq"], f["data"].get("price")) for f in got]


# -- show status -------------------------------------------------------------------------


async def test_ending_the_show_sends_show_status_to_every_room(
    server: Server, seeded: Seeded, rooms: Rooms
) -> None:
    here, there = await rooms.join(0), await rooms.join(1)
    ended = await ok(server, "POST", f"/api/shows/{seeded.show}/end", None, host(seeded))
    assert ended["status"] == "ended"
    for sock in (here, there):
        status = await sock.frame()
        assert (status["type"], status["data"]) == ("show.status", {"status": "ended"})
        assert status["seq"] == sock.got[0]["seq"] + 1
    late = await rooms.join(0)
    assert late.got[0]["data"]["show"]["status"] == "ended"


# -- bad input ---------------------------------------------------------------------------


def packed(message: Any) -> bytes:
    data: bytes = msgpack.packb(message)
    return data


async def test_bad_messages_get_error_frames_and_the_socket_keeps_its_events(
    server: Server, shop: Shop, rooms: Rooms
) -> None:
    card = await pin(server, shop)
    sock = await rooms.join(0)
    bystander = await rooms.join(1)
    bad = [
        ("text", '{"type": "hello"}'),
        ("bytes", b"\xc1\xc1"),
        ("bytes", packed({"v": 1, "type": "subscribe", "data": {}})),
        ("bytes", packed({"v": 7, "type": "heartbeat", "data": {}})),
        ("bytes", packed({"v": 1, "type": "hello", "data": {"last_seq": -3}})),
    ]
    reasons = []
    for kind, data in bad:
        if kind == "text":
            assert isinstance(data, str)
            await sock.ws.send_str(data)
        else:
            assert isinstance(data, bytes)
            await sock.send(data)
        error = await sock.frame()
        assert error["type"] == "error", error
        assert error["seq"] == sock.got[0]["seq"]  # the room's position, not a new number
        reasons.append(error["data"]["reason"])
    assert "binary" in reasons[0]
    assert "msgpack" in reasons[1]
    assert "unknown type 'subscribe'" in reasons[2]
    assert "v must be 1" in reasons[3]
    assert "last_seq" in reasons[4]

    await sock.send(packed({"v": 1, "type": "heartbeat", "data": {}}))  # good ones do not count
    await sock.send(hello(0))  # a later hello changes nothing
    await patch(server, shop, card["id"], price=1234)
    for s in (sock, bystander):
        changed = await s.frame()
        assert (changed["type"], changed["data"]["price"]) == ("card.updated", 1234)
    assert not sock.ws.closed


async def test_more_than_the_tolerated_bad_messages_close_the_socket_with_1008(
    server: Server, shop: Shop, rooms: Rooms
) -> None:
    card = await pin(server, shop)
    sock = await rooms.join(0)
    bystander = await rooms.join(0)
    for _ in range(ERRORS_MAX):
        await sock.send(b"\xc1")
        assert (await sock.frame())["type"] == "error"
    await patch(server, shop, card["id"], price=1500)
    assert (await sock.frame())["type"] == "card.updated"  # still served at the limit
    await sock.send(b"\xc1")
    assert await sock.closed() == 1008
    assert sock.got[-1]["type"] == "error"
    await patch(server, shop, card["id"], price=1400)
    _, before = await bystander.until("card.updated", price=1400)
    assert [f["data"]["price"] for f in before if f["type"] == "card.updated"] == [1500]


async def test_an_oversize_message_closes_with_1009_and_others_are_served(
    server: Server, shop: Shop, rooms: Rooms
) -> None:
    card = await pin(server, shop)
    sock = await rooms.join(0)
    bystander = await rooms.join(0)
    await sock.send(packed({"v": 1, "type": "heartbeat", "data": {"pad": "x" * 5000}}))
    assert await sock.closed() == 1009
    await patch(server, shop, card["id"], price=1500)
    assert (await bystander.frame())["data"]["price"] == 1500
    assert server.app[HUB].viewers(ShowId(shop.seeded.show), shop.seeded.branches[0]) == 1


async def test_a_message_of_exactly_the_size_limit_is_accepted(
    server: Server, shop: Shop, rooms: Rooms
) -> None:
    """The envelope takes messages of at most 4096 bytes; the socket must not refuse 4096."""
    card = await pin(server, shop)
    sock = await rooms.join(0)
    message: dict[str, Any] = {"v": 1, "type": "heartbeat", "data": {"pad": ""}}
    message["data"]["pad"] = "x" * (4096 - len(packed(message)) - 2)
    assert len(packed(message)) == 4096
    await sock.send(packed(message))
    await patch(server, shop, card["id"], price=1500)
    frame = await sock.frame()
    assert (frame["type"], frame["data"]["price"]) == ("card.updated", 1500)


@pytest.mark.parametrize(
    "first",
    [
        packed({"v": 1, "type": "heartbeat", "data": {}}),
        b"\xc1",
        "hello",  # a text frame
    ],
)
async def test_a_first_message_that_is_not_hello_closes_with_1008(
    server: Server, seeded: Seeded, rooms: Rooms, first: bytes | str
) -> None:
    sock = await rooms.open(0)
    if isinstance(first, str):
        await sock.ws.send_str(first)
    else:
        await sock.send(first)
    assert await sock.closed() == 1008
    assert {f["type"] for f in sock.got} <= {"error"}  # never a snapshot


async def test_no_hello_in_time_closes_with_1008(
    server: Server, seeded: Seeded, rooms: Rooms, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_module, "HELLO_TIMEOUT_S", 0.3)
    bystander = await rooms.join(0)
    silent = await rooms.open(0)
    started = time.monotonic()
    assert await silent.closed(within=DEADLINE_S) == 1008
    assert time.monotonic() - started < DEADLINE_S
    assert silent.got == []
    assert not bystander.ws.closed


async def test_the_upgrade_checks_the_origin(server: Server, seeded: Seeded, rooms: Rooms) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await rooms.open(0, headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await rooms.open(0, headers={"Origin": "null"})
    assert refused.value.status == 403
    same_host = await rooms.open(0, headers={"Origin": server.base})
    await same_host.send(hello())
    assert (await same_host.frame())["type"] == "snapshot"
    listed = await rooms.open(1, headers={"Origin": ALLOWED_ORIGIN})
    await listed.send(hello())
    assert (await listed.frame())["type"] == "snapshot"
    no_origin = await rooms.join(1)  # not a browser: nothing to check
    assert no_origin.got[0]["type"] == "snapshot"


async def test_unknown_show_or_branch_is_404_before_the_upgrade(
    server: Server, seeded: Seeded, rooms: Rooms
) -> None:
    other = await ok(server, "POST", "/api/merchants", {"name": "Other"})
    op = {"Authorization": f"Bearer {other['operator_token']}"}
    foreign = await ok(
        server, "POST", f"/api/merchants/{other['merchant']['id']}/branches", {"name": "X"}, op
    )
    for path in (
        f"/ws/shows/s_nosuch/rooms/{seeded.branches[0]}",
        f"/ws/shows/{seeded.show}/rooms/b_nosuch",
        f"/ws/shows/{seeded.show}/rooms/{foreign['id']}",  # another merchant's branch
    ):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await server.http.ws_connect(server.url(path))
        assert refused.value.status == 404, path


# -- a stalled client delays no one -----------------------------------------------------

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def masked_frame(payload: bytes) -> bytes:
    """A client's binary frame (RFC 6455 §5.3: clients mask every frame)."""
    assert len(payload) < 126
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x82, 0x80 | len(payload)]) + mask + body


def parse_server_frames(data: bytes) -> tuple[list[dict[str, Any]], bytes]:
    """Whole unmasked binary frames from the front of `data`, and the incomplete rest."""
    frames = []
    while len(data) >= 2:
        assert data[0] == 0x82, data[:2]  # final, binary
        assert data[1] & 0x80 == 0, data[:2]  # unmasked
        length, offset = data[1] & 0x7F, 2
        if length == 126:
            if len(data) < 4:
                break
            length, offset = int.from_bytes(data[2:4], "big"), 4
        elif length == 127:
            if len(data) < 10:
                break
            length, offset = int.from_bytes(data[2:10], "big"), 10
        if len(data) < offset + length:
            break
        frames.append(unpack(data[offset : offset + length]))
        data = data[offset + length :]
    return frames, data


@dataclass
class RawClient:
    """A websocket client done by hand on a socket with a tiny receive buffer."""

    sock: socket.socket
    received: bytes

    @classmethod
    async def join(cls, server: Server, path: str, last_seq: int | None = None) -> RawClient:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
        sock.setblocking(False)
        host, port = server.base.removeprefix("http://").split(":")
        key = base64.b64encode(os.urandom(16))
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        async with asyncio.timeout(DEADLINE_S):
            await loop.sock_connect(sock, (host, int(port)))
            await loop.sock_sendall(sock, request.encode())
            response = b""
            while b"\r\n\r\n" not in response:
                chunk = await loop.sock_recv(sock, 1024)
                assert chunk, response
                response += chunk
        head, _, rest = response.partition(b"\r\n\r\n")
        status, *lines = head.decode().split("\r\n")
        assert status.startswith("HTTP/1.1 101"), head
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()  # noqa: S324
        assert headers["sec-websocket-accept"] == accept
        client = cls(sock, rest)
        await loop.sock_sendall(sock, masked_frame(hello(last_seq)))
        return client

    async def first_frame(self) -> dict[str, Any]:
        """Read until one whole frame is here (the snapshot: the socket is in its room)."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(DEADLINE_S):
            while not (frames := parse_server_frames(self.received)[0]):
                chunk = await loop.sock_recv(self.sock, 1 << 16)
                assert chunk
                self.received += chunk
        return frames[0]

    def read_what_arrived(self) -> tuple[list[dict[str, Any]], bool]:
        """Everything the kernel still holds for us until the connection's end, and
        whether that end was a reset."""
        self.sock.setblocking(True)
        self.sock.settimeout(DEADLINE_S)
        data = self.received
        reset = False
        try:
            while chunk := self.sock.recv(1 << 16):
                data += chunk
        except ConnectionResetError:
            reset = True
        frames, _ = parse_server_frames(data)
        return frames, reset

    def close(self) -> None:
        self.sock.close()


async def test_a_stalled_client_is_dropped_without_delaying_anyone_and_resumes(
    server: Server, shop: Shop, rooms: Rooms
) -> None:
    card = await pin(server, shop)
    hub, bus, show = server.app[HUB], server.app[BUS], ShowId(shop.seeded.show)
    readers = [await rooms.join(0), await rooms.join(0), await rooms.join(1)]
    stalled = await RawClient.join(server, rooms.path(0))
    try:
        snapshot = await stalled.first_frame()  # from here on it never reads
        assert snapshot["type"] == "snapshot"
        assert hub.viewers(show, shop.seeded.branches[0]) == 3
        start = await bus.last_seq(show)
        assert snapshot["seq"] == start
        big_title = "t" * 16_000  # ~16 KB a frame: the stalled socket fills in a few MB
        delays, buffered_max, published = [], 0, 0
        while hub.dropped_slow == 0:
            assert published < 1000, "the stalled socket was never dropped"
            sent_at = time.monotonic()
            for _ in range(8):
                published += 1
                await bus.publish(show, synthetic_update(card, shop, published, big_title))
            buffered_max = max(buffered_max, max_write_buffer(server, show))
            for sock in readers:  # every reader has the whole batch, in order, promptly
                for _ in range(8):
                    await sock.frame(within=DEADLINE_S)
            delays.append(time.monotonic() - sent_at)
        last = await bus.last_seq(show)
        assert last == start + published
        for sock in readers:
            assert seqs(sock.got[1:]) == list(range(start + 1, last + 1))
            assert [f["data"]["price"] for f in sock.got[1:]] == list(range(1, published + 1))
        assert max(delays) < 2.0, max(delays)
        assert hub.dropped_slow == 1
        assert buffered_max <= SEND_BUFFER_BYTES_MAX
        # Dropped after about the bound plus what the kernel may hold unsent (then a
        # batch more): without TCP_NOTSENT_LOWAT Linux grows the send buffer to take
        # megabytes (8 times as many frames here) before the hub sees any backlog.
        assert published * 16_000 <= SEND_BUFFER_BYTES_MAX + NOTSENT_LOWAT_BYTES + 10 * 16_000
        assert hub.viewers(show, shop.seeded.branches[0]) == 2  # it left the room at once

        # It was cut off with a reset (the server's kernel freed its queue at once): it
        # reads what reached it, then the end of the connection.
        arrived, reset = await asyncio.to_thread(stalled.read_what_arrived)
        assert reset
        assert arrived[0] == snapshot
        k = arrived[-1]["seq"]
        assert seqs(arrived) == list(range(start, k + 1))
        assert k < last
    finally:
        stalled.close()

    back = await rooms.join(0, last_seq=k, expect_snapshot=False)
    replayed = [await back.frame() for _ in range(last - k)]
    assert seqs(replayed) == list(range(k + 1, last + 1))
    await patch(server, shop, card["id"], price=1)
    live = await back.frame()
    assert live["seq"] == last + 1
    for sock in readers:
        assert (await sock.frame())["seq"] == last + 1


def max_write_buffer(server: Server, show: ShowId) -> int:
    """The largest unsent backlog of any socket of the show (hub internals)."""
    state = server.app[HUB]._shows[show]
    return max(
        (c.transport.get_write_buffer_size() for room in state.rooms.values() for c in room),
        default=0,
    )


# -- viewer counts and scale -------------------------------------------------------------


async def test_viewer_counts_follow_the_room_every_two_seconds_when_changed(
    server: Server, seeded: Seeded, rooms: Rooms
) -> None:
    interval = hub_module.VIEWERS_INTERVAL_S
    first, second, there = await rooms.join(0), await rooms.join(0), await rooms.join(1)
    for sock in (first, second, there):
        sock.with_viewers = True
        sock.got += sock.viewers  # any that came with the joins
    started = time.monotonic()
    counted, _ = await first.until("viewers", within=interval + 2, count=2)
    assert counted["seq"] == first.got[0]["seq"]  # the room's position: no number of its own
    await second.until("viewers", within=interval + 2, count=2)
    await there.until("viewers", within=interval + 2, count=1)  # each room its own count
    assert time.monotonic() - started < interval + 2

    await second.ws.close()
    left = time.monotonic()
    await first.until("viewers", within=interval + 2, count=1)
    assert time.monotonic() - left < interval + 2
    counts = [f["data"]["count"] for f in first.got if f["type"] == "viewers"]
    assert all(a != b for a, b in itertools.pairwise(counts)), counts  # only changes
    assert counts[-2:] == [2, 1]
    assert not [f for f in there.got if f["type"] == "viewers" and f["data"]["count"] != 1]


async def test_a_viewer_joining_a_room_that_emptied_is_told_the_right_count(
    server: Server, seeded: Seeded, rooms: Rooms, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, show, a = server.app[HUB], ShowId(seeded.show), seeded.branches[0]
    interval = hub_module.VIEWERS_INTERVAL_S
    alone = await rooms.join(0)
    alone.with_viewers = True
    await alone.until("viewers", within=interval + 2, count=1)
    left = asyncio.Event()
    leave = hub._leave
    monkeypatch.setattr(hub, "_leave", lambda client: (leave(client), left.set()))
    await alone.ws.close()
    async with asyncio.timeout(DEADLINE_S):  # the server has seen it leave
        await left.wait()
    assert hub.viewers(show, a) == 0
    again = await rooms.join(0)
    again.with_viewers = True
    told = [again.got[0]["data"]["viewers"]]
    if told[-1] != 1:  # a wrong snapshot count may still be corrected in time
        with contextlib.suppress(TimeoutError):
            told.append((await again.until("viewers", within=interval + 1))[0]["data"]["count"])
    assert told[-1] == 1, f"told {told} while alone in the room"


async def test_a_thousand_sockets_in_one_room_all_get_the_card_and_a_burst_in_order(
    server: Server, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Enough sockets for SendPool's helper threads to take shares of every write."""
    n = 1000
    hub, show = server.app[HUB], ShowId(shop.seeded.show)
    pool = SendPool(helpers=2)
    monkeypatch.setattr(hub, "_pool", pool)  # before the show is loaded: its writer uses it
    path = server.url(f"/ws/shows/{shop.seeded.show}/rooms/{shop.seeded.branches[0]}")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def join() -> aiohttp.ClientWebSocketResponse:
            ws = await http.ws_connect(path)
            await ws.send_bytes(hello())
            async with asyncio.timeout(DEADLINE_S):
                snapshot = await ws.receive()
            assert unpack(snapshot.data)["type"] == "snapshot"
            return ws

        sockets: list[aiohttp.ClientWebSocketResponse] = []
        try:
            for _ in range(n // 100):  # in batches: the listen backlog is finite
                sockets += await asyncio.gather(*(join() for _ in range(100)))
            assert hub.viewers(show, shop.seeded.branches[0]) == n

            card = await pin(server, shop, price=888)
            started = time.monotonic()

            async def card_of(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
                async with asyncio.timeout(DEADLINE_S):
                    while True:  # viewer counts may come first: the room grew meanwhile
                        frame = unpack((await ws.receive()).data)
                        if frame["type"] != "viewers":
                            return frame

            frames = await asyncio.gather(*(card_of(ws) for ws in sockets))
            elapsed = time.monotonic() - started
            seq = await server.app[BUS].last_seq(show)
            assert {(f["type"], f["seq"], f["data"]["id"]) for f in frames} == {
                ("card.shown", seq, card["id"])
            }
            assert {f["data"]["price"] for f in frames} == {888}
            assert elapsed < DEADLINE_S

            # Ten updates in one tick: one write per socket, ten frames each, in order.
            fanout = hub._shows[show].fanout
            assert fanout is not None
            writes = fanout.writes
            for price in range(1, 11):
                await server.app[BUS].publish(show, synthetic_update(card, shop, price, "t"))

            async def updates_of(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
                got: list[dict[str, Any]] = []
                async with asyncio.timeout(DEADLINE_S):
                    while len(got) < 10:
                        frame = unpack((await ws.receive()).data)
                        if frame["type"] != "viewers":
                            got.append(frame)
                return got

            for got in await asyncio.gather(*(updates_of(ws) for ws in sockets)):
                assert seqs(got) == list(range(seq + 1, seq + 11))
                assert [f["data"]["price"] for f in got] == list(range(1, 11))
            assert fanout.writes - writes <= 2 * n  # viewer counts may take a pass of their own
        finally:
            async with asyncio.timeout(2 * DEADLINE_S):
                await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
            pool.close()


# -- branches that change after the room's state was loaded ------------------------------


async def test_a_branch_opened_after_the_show_was_loaded_has_a_working_room(
    server: Server, seeded: Seeded, rooms: Rooms
) -> None:
    """A show has a room per branch, "a branch opened mid-season gets its room at once"."""
    await rooms.join(0)  # the hub now holds the show's state
    op = {"Authorization": f"Bearer {seeded.operator_token}"}
    new = await ok(
        server, "POST", f"/api/merchants/{seeded.merchant}/branches", {"name": "Jingan"}, op
    )
    seeded.branches.append(new["id"])
    sock = await rooms.open(2)
    await sock.send(hello())
    snapshot = await sock.frame()
    assert snapshot["type"] == "snapshot"
    assert snapshot["data"]["branch"]["id"] == new["id"]


async def test_a_branch_closed_after_the_show_was_loaded_shows_closed_in_its_room(
    server: Server, shop: Shop, rooms: Rooms
) -> None:
    await pin(server, shop)
    before = await rooms.join(0)
    assert only_card(before.got[0])["pickup"] is True
    a = shop.seeded.branches[0]
    closed = await ok(
        server,
        "PATCH",
        f"/api/merchants/{shop.seeded.merchant}/branches/{a}",
        {"is_open": False},
        shop.operator,
    )
    assert closed["is_open"] is False
    after = await rooms.join(0)
    assert after.got[0]["data"]["branch"]["is_open"] is False
    assert only_card(after.got[0])["pickup"] is False  # no pickup at a closed branch
