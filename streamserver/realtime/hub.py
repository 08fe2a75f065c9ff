"""The websocket hub: shoppers' sockets per branch room, and fan-out of show events.

One socket per shopper per branch room. The hub keeps, per show it serves on this
node, the state a room renders (status, cards, stock per branch, the last sequence
number applied) and updates it from the bus; so a join's snapshot is built from memory.

Fan-out: an event is applied here at once and rendered and encoded once per room
(each branch sees its own stock); the frame is queued for the room's sockets and the
show's writer (fanout.py) writes it, joined with whatever else was queued meanwhile,
off the publisher's request. A socket whose unsent bytes pass the bound is dropped at
once: a stalled client never delays anyone and is never buffered without limit; it
resumes with its last sequence number.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any, Final

from aiohttp import WSMsgType, web

from commerce.cards import Card, CardView, card_view
from commerce.catalog import Branch
from commerce.ids import BranchId, CardId, MerchantId, ShowId, SkuId
from commerce.shows import Show, ShowStatus
from streamserver.bus.port import Bus, Event, Published, Unsubscribe
from streamserver.origins import is_allowed_origin
from streamserver.realtime.envelope import (
    INBOUND_BYTES_MAX,
    BadFrame,
    Heartbeat,
    Hello,
    binary_frame,
    decode_client,
    encode,
)
from streamserver.realtime.fanout import HOLDING, Client, Sender, ShowFanout, bound_socket, reset
from streamserver.realtime.sendpool import SendPool, socket_fd
from streamserver.store import codec
from streamserver.store.port import Store

logger = logging.getLogger(__name__)

HELLO_TIMEOUT_S: Final = 10.0
ERRORS_MAX: Final = 5  # bad messages tolerated before the socket is closed
VIEWERS_INTERVAL_S: Final = 2.0


@dataclass(eq=False)
class ShowState:
    """What the rooms of one show render, kept current from the bus."""

    show: Show
    branches: dict[BranchId, Branch]
    cards: dict[CardId, Card]
    stock: dict[SkuId, dict[BranchId, int]]
    seq: int
    rooms: dict[BranchId, set[Client]] = field(default_factory=lambda: defaultdict(set))
    unsubscribe: Unsubscribe | None = None
    fanout: ShowFanout | None = None
    viewers_sent: dict[BranchId, int] = field(default_factory=dict)

    def view(self, card: Card, branch: BranchId) -> CardView:
        available = {(b, card.sku): n for b, n in self.stock.get(card.sku, {}).items()}
        branches = list(self.branches.values())
        return card_view(card, self.branches[branch], branches, available, _now_ms())


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def present_card(view: CardView) -> dict[str, Any]:
    card = view.card
    return {
        "id": card.id,
        "sku": card.sku,
        "title": card.title,
        "list_price": card.list_price,
        "price": card.price,
        "ends_at_ms": card.ends_at_ms,
        "limit_per_shopper": card.limit_per_shopper,
        "available_here": view.available_here,
        "pickup": view.pickup,
        "delivery": view.delivery,
        "ended": view.ended,
    }


class Hub:
    def __init__(self, store: Store, bus: Bus, allowed_origins: tuple[str, ...] = ()) -> None:
        self._store = store
        self._bus = bus
        self._allowed_origins = allowed_origins
        self._shows: dict[ShowId, ShowState] = {}
        self._loading: dict[ShowId, asyncio.Future[ShowState]] = {}
        self._by_shopper: dict[str, set[Client]] = defaultdict(set)
        self._personal: dict[MerchantId, Unsubscribe] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._pool = SendPool()
        self._sender = Sender(self._drop_slow)
        self._stopped: list[ShowFanout] = []  # unloaded shows' writers, awaited on close
        self.dropped_slow = 0

    def start(self) -> None:
        self._ticker = asyncio.create_task(self._send_viewer_counts())

    async def close_sockets(self) -> None:
        """On shutdown, before handlers are awaited: say goodbye so clients reconnect."""
        clients = [c for s in self._shows.values() for room in s.rooms.values() for c in room]
        await asyncio.gather(
            *(c.ws.close(code=1001, message=b"server restarting") for c in clients),
            return_exceptions=True,
        )

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await self.close_sockets()
        for state in self._shows.values():
            if state.unsubscribe is not None:
                state.unsubscribe()
            if state.fanout is not None:
                self._stopped.append(state.fanout)
        for unsubscribe in self._personal.values():
            unsubscribe()
        for fanout in self._stopped:
            await fanout.close()
        self._pool.close()

    def sockets(self) -> int:
        return sum(len(c) for s in self._shows.values() for c in s.rooms.values())

    def viewers(self, show: ShowId, branch: BranchId) -> int:
        state = self._shows.get(show)
        return 0 if state is None else len(state.rooms.get(branch, ()))

    # -- the websocket handler ----------------------------------------------------------

    async def handle(
        self, request: web.Request, show: Show, branch: Branch, shopper: str | None
    ) -> web.WebSocketResponse:
        """Serve one socket in a branch room until it closes.

        `shopper` (signed in, or None for a guest who only watches) also gets its own
        order frames on this socket.
        """
        origin = request.headers.get("Origin")
        if origin is not None and not is_allowed_origin(origin, request, self._allowed_origins):
            raise web.HTTPForbidden(text="this origin may not open the room's socket")
        ws = web.WebSocketResponse(
            compress=False, max_msg_size=INBOUND_BYTES_MAX + 1, heartbeat=30.0, autoping=True
        )
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None
        bound_socket(transport)
        client = Client(ws, transport, socket_fd(transport), show.id, branch.id, shopper)
        try:
            await self._serve(client, show, branch)
        finally:
            self._leave(client)
        return ws

    async def _serve(self, client: Client, show: Show, branch: Branch) -> None:
        ws = client.ws
        try:
            first = await asyncio.wait_for(ws.receive(), HELLO_TIMEOUT_S)
        except TimeoutError:
            await ws.close(code=1008, message=b"send hello first")
            return
        hello = self._read(client, first)
        if not isinstance(hello, Hello):
            await ws.close(code=1008, message=b"send hello first")
            return
        state = await self._state(show)
        # A room opened after the show was loaded here is served too; edits to known
        # branches arrive as events (the handler's copy may be a second old).
        state.branches.setdefault(client.branch, branch)
        await self._join(client, state, hello.last_seq)
        async for message in ws:
            received = self._read(client, message)
            if received is None and client.errors > ERRORS_MAX:
                await ws.close(code=1008, message=b"too many bad messages")
                return
            # Heartbeats need no answer; a later hello changes nothing.

    def _read(self, client: Client, message: Any) -> Hello | Heartbeat | None:
        if message.type == WSMsgType.BINARY:
            try:
                return decode_client(message.data)
            except BadFrame as exc:
                self._error(client, str(exc))
                return None
        if message.type == WSMsgType.TEXT:
            self._error(client, "send binary msgpack frames")
        return None

    def _error(self, client: Client, reason: str) -> None:
        client.errors += 1
        frame = binary_frame(encode("error", self._position(client), {"reason": reason}))
        self._sender.send(client, frame)

    def _position(self, client: Client) -> int:
        """The seq a frame with no number of its own carries: the last one this socket
        was sent (the room's, before it has any), so a client's resume point never runs
        ahead of the frames it really has."""
        if client.seq != HOLDING:
            return client.seq
        state = self._shows.get(client.show)
        return 0 if state is None else state.seq

    async def _join(self, client: Client, state: ShowState, last_seq: int | None) -> None:
        if last_seq is None:
            self._sender.send(client, self._snapshot(state, client.branch))
            client.seq = state.seq  # frames still queued for the room up to here: skipped
            self._enter(client, state)
            return
        # In the room first, holding live frames, so nothing applied while the bus
        # answers slips between the replay and the live frames.
        client.held = []
        self._enter(client, state)
        missed = await self._bus.since(client.show, last_seq)
        if client not in state.rooms[client.branch]:
            return  # dropped meanwhile
        held, client.held = client.held or [], None
        first_live = held[0][0] if held else state.seq + 1
        replay = None if missed is None else [p for p in missed if p.seq < first_live]
        frames: list[tuple[int, bytes]] = []
        if (
            replay is None
            or (replay and replay[0].seq != last_seq + 1)
            or any(p.seq > state.seq for p in replay)
        ):
            self._sender.send(client, self._snapshot(state, client.branch))
            client.seq = state.seq
        else:
            client.seq = last_seq
            frames = [(p.seq, self._room_frame(state, p, client.branch)) for p in replay]
        frames += held
        # Each number once, in order: a frame queued before this socket entered the
        # room can be both in the bus's answer and among the held ones.
        fresh = []
        for seq, frame in frames:
            if seq > client.seq:
                fresh.append(frame)
                client.seq = seq
        if fresh:
            self._sender.send(client, b"".join(fresh))

    def _enter(self, client: Client, state: ShowState) -> None:
        state.rooms[client.branch].add(client)
        if client.shopper is not None:
            self._by_shopper[client.shopper].add(client)

    def _leave(self, client: Client) -> None:
        client.seq, client.held = HOLDING, None  # a pass under way skips it from now on
        state = self._shows.get(client.show)
        if state is not None:
            state.rooms[client.branch].discard(client)
            if not any(state.rooms.values()):
                self._unload(state)
        if client.shopper is not None:
            clients = self._by_shopper.get(client.shopper)
            if clients is not None:
                clients.discard(client)
                if not clients:
                    del self._by_shopper[client.shopper]

    def _unload(self, state: ShowState) -> None:
        """No socket left: stop following the show (the next join loads it afresh)."""
        if self._shows.get(state.show.id) is state:
            del self._shows[state.show.id]
        if state.unsubscribe is not None:
            state.unsubscribe()
            state.unsubscribe = None
        if state.fanout is not None:
            state.fanout.stop()
            self._stopped = [f for f in self._stopped if not f.stopped()]
            self._stopped.append(state.fanout)
            state.fanout = None

    # -- show state ---------------------------------------------------------------------

    async def _state(self, show: Show) -> ShowState:
        state = self._shows.get(show.id)
        if state is not None:
            return state
        loading = self._loading.get(show.id)
        if loading is None:
            loading = self._loading[show.id] = asyncio.ensure_future(self._load(show))
        try:
            return await asyncio.shield(loading)
        finally:
            if loading.done():
                self._loading.pop(show.id, None)

    async def _load(self, show: Show) -> ShowState:
        """Note the bus position, subscribe from it, then read the store: events that
        arrive meanwhile wait and are folded in after (they carry absolute values)."""
        seq = await self._bus.last_seq(show.id)
        early: list[Published] = []
        unsubscribe = self._bus.subscribe(show.id, early.append, after_seq=seq)
        branches = {b.id: b for b in await self._store.branches(show.merchant)}
        cards = {c.id: c for c in await self._store.cards(show.id)}
        levels = await self._store.stock(show.merchant)
        fresh = await self._store.show(show.id) or show
        stock: dict[SkuId, dict[BranchId, int]] = defaultdict(dict)
        for (branch, sku), level in levels.items():
            stock[sku][branch] = level.available
        state = ShowState(fresh, branches, cards, dict(stock), seq)
        state.fanout = ShowFanout(state.rooms, self._pool, self._sender)
        for published in early:
            self._on_event(state, published)
        # The same subscription goes on, now feeding the state directly.
        state.unsubscribe = self._bus.subscribe(
            show.id, lambda p: self._on_event(state, p), after_seq=state.seq
        )
        unsubscribe()
        self._shows[show.id] = state
        if show.merchant not in self._personal:
            self._personal[show.merchant] = self._bus.subscribe_personal(
                show.merchant, self._on_personal
            )
        return state

    def _on_event(self, state: ShowState, published: Published) -> None:
        if published.seq <= state.seq:
            return  # already applied (seen while loading)
        _apply(state, published.event)
        state.seq = published.seq
        fanout = state.fanout
        if fanout is None:
            return  # unloaded: no socket left
        for branch, clients in state.rooms.items():
            if clients:  # encoded once per room, written by the show's writer
                fanout.queue(branch, published.seq, self._room_frame(state, published, branch))

    def _on_personal(self, event: Event) -> None:
        if event.get("type") == "branch":  # a branch edited: rooms render it from now on
            branch = codec.branch_from_dict(event["branch"])
            for state in self._shows.values():
                if state.show.merchant == branch.merchant:
                    state.branches[branch.id] = branch
            return
        clients = self._by_shopper.get(str(event.get("shopper")))
        if not clients:
            return
        for client in list(clients):
            frame = binary_frame(encode("order", self._position(client), event))
            self._sender.send(client, frame)

    # -- frames -------------------------------------------------------------------------

    def _snapshot(self, state: ShowState, branch: BranchId) -> bytes:
        room = state.branches[branch]
        data = {
            "show": {"id": state.show.id, "title": state.show.title, "status": state.show.status},
            "branch": {"id": room.id, "name": room.name, "is_open": room.is_open},
            "cards": [present_card(state.view(card, branch)) for card in state.cards.values()],
            "viewers": len(state.rooms.get(branch, ())) + 1,  # the joiner is about to enter
        }
        return binary_frame(encode("snapshot", state.seq, data))

    def _room_frame(self, state: ShowState, published: Published, branch: BranchId) -> bytes:
        """The one frame a room gets for one event, rendered with the room's own stock.

        Every event numbers exactly one frame in every room, so a client's sequence has
        no holes: an event with nothing to show this room becomes a `nop`.
        """
        kind, data = self._render(state, published.event, branch)
        return binary_frame(encode(kind, published.seq, data))

    def _render(
        self, state: ShowState, event: Event, branch: BranchId
    ) -> tuple[str, dict[str, Any]]:
        kind = event["type"]
        nop: tuple[str, dict[str, Any]] = ("nop", {})
        if branch not in state.branches:
            return nop
        if kind in ("card.shown", "card.updated"):
            card = state.cards.get(CardId(event["card"]["id"]))
            return nop if card is None else (kind, present_card(state.view(card, branch)))
        if kind == "card.hidden":
            return kind, {"id": event["card"]}
        if kind == "stock":
            views = [
                state.view(card, branch)
                for card in state.cards.values()
                if card.sku == event["sku"]
            ]
            if not views:
                return nop
            cards = [
                {
                    "id": v.card.id,
                    "available_here": v.available_here,
                    "pickup": v.pickup,
                    "delivery": v.delivery,
                }
                for v in views
            ]
            return kind, {"sku": event["sku"], "cards": cards}
        if kind == "show.status":
            return kind, {"status": event["status"]}
        logger.warning("unknown show event %r", kind)
        return nop

    def _drop_slow(self, client: Client) -> None:
        """Too far behind: leave the room now, cut the connection; it resumes by seq."""
        self.dropped_slow += 1
        self._leave(client)
        reset(client.transport)

    async def _send_viewer_counts(self) -> None:
        while True:
            await asyncio.sleep(VIEWERS_INTERVAL_S)
            for state in self._shows.values():
                if state.fanout is None:
                    continue
                for branch, clients in state.rooms.items():
                    count = len(clients)
                    if not clients:
                        state.viewers_sent.pop(branch, None)
                        continue
                    if state.viewers_sent.get(branch) == count:
                        continue
                    state.viewers_sent[branch] = count
                    frame = binary_frame(encode("viewers", state.seq, {"count": count}))
                    state.fanout.queue(branch, None, frame)  # after the frames up to seq


def _apply(state: ShowState, event: Event) -> None:
    """Fold one show event into the state the rooms render."""
    kind = event["type"]
    if kind in ("card.shown", "card.updated"):
        card = codec.card_from_dict(event["card"])
        state.cards[card.id] = card
        state.stock[card.sku] = {BranchId(b): n for b, n in event["stock"].items()}
    elif kind == "card.hidden":
        state.cards.pop(CardId(event["card"]), None)
    elif kind == "stock":
        state.stock.setdefault(SkuId(event["sku"]), {}).update(
            {BranchId(b): n for b, n in event["stock"].items()}
        )
    elif kind == "show.status":
        state.show = replace(state.show, status=ShowStatus(event["status"]))
