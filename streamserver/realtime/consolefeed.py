"""The consoles' live feed: per merchant, what its branch consoles and HQ board show.

A `MerchantFeed` lives on this node while a console socket (or the host's pace poll)
uses it. It keeps a fact per order of the last day (`commerce.board.OrderFact`), fed
by the merchant's personal events on the bus (every node announces its order changes
there, `effects.after_apply`) after a first read from the store, and follows the show
the consoles link to (`board.followed_show`) on the bus for its status.

Sockets get a snapshot when they join and incremental frames after: `order` (a branch
console's own orders, as the API presents them), `viewers`, `statement`, `customers`,
`show`, and `board` for HQ. Frames that add up (statements, the board, customers) are
recomputed at most once a second, and only when something they show changed. A socket
is registered before its snapshot is read and holds live frames until the snapshot is
out, so nothing slips between them; frames carry absolute values, so one seen twice is
harmless. A reconnect gets a fresh snapshot (consoles do not resume by sequence).

Viewer counts are this node's room sockets (`Hub.viewers`), as the room itself shows.
Bounds: the event queue (a console falling that far behind is closed and reconnects to
a snapshot), the orders read at load, the facts kept, each socket's unsent bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Final

from aiohttp import WSMsgType, web

from commerce import board, ledger
from commerce.board import OrderFact
from commerce.catalog import Branch
from commerce.ids import BranchId, MerchantId, OrderId, ShowId, SkuId
from commerce.orders import OrderState
from commerce.shows import Show, ShowStatus
from streamserver.api.fulfillment import customers_of, present_statement
from streamserver.api.orders import present_order
from streamserver.bus.port import Bus, Event, Published, Unsubscribe
from streamserver.realtime.consoleframes import (
    fact_from_event,
    present_board,
    present_series,
    present_show,
)
from streamserver.realtime.envelope import (
    INBOUND_BYTES_MAX,
    BadFrame,
    Hello,
    binary_frame,
    decode_client,
    encode,
)
from streamserver.store.port import Store

logger = logging.getLogger(__name__)

HORIZON_MS: Final = 24 * 3600 * 1000  # consoles show at most the last day
ORDERS_LOADED_MAX: Final = 10_000  # newest orders read when a feed starts
FACTS_MAX: Final = 200_000  # per merchant; the oldest go first past this
QUEUE_MAX: Final = 10_000  # events waiting; past this every console starts over
RECENT_ORDERS_MAX: Final = 100  # a branch console's snapshot lists this many
TICK_S: Final = 1.0  # statements, customers and the board are recomputed at most this often
REFRESH_S: Final = 5.0  # the followed show and the branches are read again this often
IDLE_S: Final = 60.0  # a feed nobody used for this long is closed
SEND_BUFFER_BYTES_MAX: Final = 256 * 1024
HELLO_TIMEOUT_S: Final = 10.0
ERRORS_MAX: Final = 5
PACE_WINDOW_MS: Final = 60_000

ViewerCount = Callable[[ShowId, BranchId], int]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(eq=False, slots=True)
class ConsoleSocket:
    """One console's socket: a branch's (branch set) or HQ's board (branch None)."""

    ws: web.WebSocketResponse
    transport: asyncio.Transport
    branch: BranchId | None
    since_ms: int
    session: bytes | None = None  # the session's digest, when it opened with one
    seq: int = 0
    errors: int = 0
    held: list[tuple[str, dict[str, Any]]] | None = field(default_factory=list)

    def send(self, kind: str, data: dict[str, Any]) -> None:
        if self.held is not None:
            self.held.append((kind, data))
            return
        self.seq += 1
        if self.transport.is_closing():
            return
        if self.transport.get_write_buffer_size() > SEND_BUFFER_BYTES_MAX:
            self.transport.abort()  # too far behind: it reconnects to a fresh snapshot
            return
        self.transport.write(binary_frame(encode(kind, self.seq, data)))

    def release(self, first: tuple[str, dict[str, Any]]) -> None:
        """Send the snapshot, then whatever arrived while it was read."""
        held, self.held = self.held or [], None
        self.send(*first)
        for kind, data in held:
            self.send(kind, data)


class MerchantFeed:
    def __init__(self, merchant: MerchantId, store: Store, bus: Bus, viewers: ViewerCount) -> None:
        self.merchant = merchant
        self._store = store
        self._bus = bus
        self._viewer_count = viewers
        self.facts: dict[OrderId, OrderFact] = {}
        self.branches: dict[BranchId, Branch] = {}
        self.show: Show | None = None
        self.viewers: dict[BranchId, int] = {}
        self.sockets: set[ConsoleSocket] = set()
        self.last_used = time.monotonic()
        self._queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_MAX)
        self._unsubscribe: Unsubscribe | None = None
        self._show_unsubscribe: Unsubscribe | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._dirty_board = False
        self._dirty_statements: set[BranchId] = set()
        self._dirty_customers: set[BranchId] = set()
        self._refreshed_at = 0.0
        self._broken = False

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen first, then read: events meanwhile wait in the queue (facts merge)."""
        self._unsubscribe = self._bus.subscribe_personal(self.merchant, self._on_personal)
        horizon = now_ms() - HORIZON_MS
        for order in await self._store.orders(self.merchant, limit=ORDERS_LOADED_MAX):
            if order.placed_at_ms >= horizon:
                self._merge(board.fact_of(order))
        await self._refresh()
        self._tasks = [asyncio.create_task(self._consume()), asyncio.create_task(self._tick())]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for unsubscribe in (self._unsubscribe, self._show_unsubscribe):
            if unsubscribe is not None:
                unsubscribe()
        await asyncio.gather(
            *(s.ws.close(code=1001, message=b"server restarting") for s in self.sockets),
            return_exceptions=True,
        )

    def idle(self, now_s: float) -> bool:
        return not self.sockets and now_s - self.last_used > IDLE_S

    @property
    def broken(self) -> bool:
        """Events were dropped: its facts are incomplete, a fresh feed must replace it."""
        return self._broken

    # -- what the feed knows ------------------------------------------------------------

    def _merge(self, fact: OrderFact) -> bool:
        if not board.newer(self.facts.get(fact.order), fact):
            return False
        self.facts[fact.order] = fact
        if len(self.facts) > FACTS_MAX:  # about the oldest: facts come in time order
            del self.facts[next(iter(self.facts))]
        return True

    def _facts_since(self, since_ms: int) -> Iterable[OrderFact]:
        return (f for f in self.facts.values() if f.placed_at_ms >= since_ms)

    def pace(self, at_ms: int) -> dict[SkuId, board.Pace]:
        self.last_used = time.monotonic()
        return board.pace(self.facts.values(), now_ms=at_ms, window_ms=PACE_WINDOW_MS)

    async def _refresh(self) -> None:
        """Branches (a new one sends no event) and the show the consoles follow."""
        self._refreshed_at = time.monotonic()
        await self._close_signed_out()
        branches = {b.id: b for b in await self._store.branches(self.merchant)}
        if branches != self.branches:
            self.branches = branches
            self._dirty_board = True
        followed = board.followed_show(await self._store.shows(self.merchant))
        if followed != self.show:
            await self._follow(followed)
        self._sample_viewers()
        horizon = now_ms() - HORIZON_MS
        for order_id in [o for o, f in self.facts.items() if f.placed_at_ms < horizon]:
            del self.facts[order_id]

    async def _follow(self, show: Show | None) -> None:
        if self._show_unsubscribe is not None:
            self._show_unsubscribe()
            self._show_unsubscribe = None
        self.show = show
        if show is not None and show.status is not ShowStatus.ENDED:
            # From the bus's position now: the status was just read, events carry the next.
            self._show_unsubscribe = self._bus.subscribe(
                show.id, self._on_show_event, after_seq=await self._bus.last_seq(show.id)
            )
        self._announce_show()

    async def _close_signed_out(self) -> None:
        """A console whose session ended (expired, signed out) is closed: its page asks
        to sign in again when the socket is refused."""
        now = now_ms()
        for s in list(self.sockets):
            if s.session is None:
                continue
            session = await self._store.session(s.session)
            if session is None or session.expires_at_ms <= now:
                await s.ws.close(code=1008, message=b"the session has ended")

    def _announce_show(self) -> None:
        for s in list(self.sockets):
            s.send("show", {"show": present_show(self.show, s.branch)})
        self._dirty_board = True

    def _sample_viewers(self) -> None:
        show = self.show
        counts = (
            {}
            if show is None or show.status is ShowStatus.ENDED
            else {b: self._viewer_count(show.id, b) for b in self.branches}
        )
        if counts == self.viewers:
            return
        for s in list(self.sockets):
            if s.branch is not None and counts.get(s.branch, 0) != self.viewers.get(s.branch, 0):
                s.send("viewers", {"count": counts.get(s.branch, 0)})
        self.viewers = counts
        self._dirty_board = True

    # -- the bus ------------------------------------------------------------------------

    def _on_personal(self, event: Event) -> None:
        if event.get("type") not in ("order", "branch"):
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            logger.warning("console feed of %s fell behind: consoles start over", self.merchant)
            self._broken = True
            while not self._queue.empty():
                self._queue.get_nowait()
            for s in list(self.sockets):
                s.transport.abort()  # they reconnect to a fresh feed's snapshot

    def _on_show_event(self, published: Published) -> None:
        event = published.event
        if event.get("type") == "show.status" and self.show is not None:
            self.show = replace(self.show, status=ShowStatus(event["status"]))
            self._announce_show()

    async def _consume(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._apply(event)
            except Exception:  # one bad event must not stop the consoles' feed
                logger.exception("console feed could not apply %r", event)

    async def _apply(self, event: Event) -> None:
        if event.get("type") == "branch":
            self._refreshed_at = 0.0  # read the branches again at the next tick
            return
        fact = fact_from_event(event)
        if fact is None or not self._merge(fact):
            return
        touched = {fact.branch, BranchId(str(event.get("ship_from", fact.branch)))}
        self._dirty_board = True
        self._dirty_statements |= touched
        if fact.state is OrderState.PLACED:
            self._dirty_customers.add(fact.branch)
        watching = [s for s in self.sockets if s.branch in touched]
        if not watching:
            return
        order = await self._store.order(self.merchant, fact.order)
        if order is None:
            return
        presented = {"order": present_order(order, for_shopper=False)}
        for s in watching:
            s.send("order", presented)

    # -- the once-a-second recomputation ------------------------------------------------

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                if time.monotonic() - self._refreshed_at >= REFRESH_S:
                    await self._refresh()
                else:
                    self._sample_viewers()
                await self._flush()
            except Exception:  # the next tick tries again with absolute values
                logger.exception("console feed tick failed for %s", self.merchant)

    async def _flush(self) -> None:
        boards = self._dirty_board
        statements, self._dirty_statements = self._dirty_statements, set()
        customers, self._dirty_customers = self._dirty_customers, set()
        self._dirty_board = False
        transfers: dict[int, list[ledger.Transfer]] = {}
        for s in list(self.sockets):
            if s.branch is None and boards:
                s.send("board", await self.board_of(s.since_ms, transfers))
            elif s.branch in statements:
                s.send("statement", await self.statement_of(s.branch, s.since_ms, transfers))
            if s.branch is not None and s.branch in customers:
                s.send("customers", {"customers": await self.customers_of(s.branch)})

    async def _transfers(
        self, since_ms: int, cache: dict[int, list[ledger.Transfer]]
    ) -> list[ledger.Transfer]:
        if since_ms not in cache:
            cache[since_ms] = await self._store.transfers(self.merchant, since_ms)
        return cache[since_ms]

    async def board_of(
        self, since_ms: int, cache: dict[int, list[ledger.Transfer]] | None = None
    ) -> dict[str, Any]:
        transfers = await self._transfers(since_ms, {} if cache is None else cache)
        branches = list(self.branches.values())
        settled = {b.id: ledger.statement(b.id, transfers).sales for b in branches}
        value = board.board(
            branches,
            self._facts_since(since_ms),
            since_ms=since_ms,
            viewers=self.viewers,
            settled=settled,
        )
        return {"show": present_show(self.show, None), **present_board(value, since_ms)}

    async def statement_of(
        self,
        branch: BranchId,
        since_ms: int,
        cache: dict[int, list[ledger.Transfer]] | None = None,
    ) -> dict[str, Any]:
        transfers = await self._transfers(since_ms, {} if cache is None else cache)
        series = board.sales_series(
            self._facts_since(since_ms), branch, since_ms=since_ms, now_ms=now_ms()
        )
        return {
            "since_ms": since_ms,
            "statement": present_statement(ledger.statement(branch, transfers)),
            "series": present_series(series),
        }

    async def customers_of(self, branch: BranchId) -> list[dict[str, Any]]:
        return await customers_of(self._store, self.merchant, branch)

    # -- sockets ------------------------------------------------------------------------

    async def serve(self, ws: web.WebSocketResponse, sock: ConsoleSocket) -> None:
        """Wait for the hello, send the snapshot, then keep the socket until it closes."""
        self.sockets.add(sock)  # holding live frames from now on (see the module doc)
        try:
            try:
                first = await asyncio.wait_for(ws.receive(), HELLO_TIMEOUT_S)
            except TimeoutError:
                await ws.close(code=1008, message=b"send hello first")
                return
            if not isinstance(self._read(sock, first), Hello):
                await ws.close(code=1008, message=b"send hello first")
                return
            sock.release(("snapshot", await self._snapshot(sock)))
            async for message in ws:
                if self._read(sock, message) is None and sock.errors > ERRORS_MAX:
                    await ws.close(code=1008, message=b"too many bad messages")
                    return
        finally:
            self.sockets.discard(sock)
            self.last_used = time.monotonic()

    def _read(self, sock: ConsoleSocket, message: Any) -> object | None:
        reason = "send binary msgpack frames"
        if message.type == WSMsgType.BINARY:
            try:
                return decode_client(message.data)
            except BadFrame as exc:
                reason = str(exc)
        if message.type in (WSMsgType.BINARY, WSMsgType.TEXT):
            sock.errors += 1
            sock.transport.write(binary_frame(encode("error", sock.seq, {"reason": reason})))
        return None

    async def _snapshot(self, sock: ConsoleSocket) -> dict[str, Any]:
        if sock.branch is None:
            return await self.board_of(sock.since_ms)
        branch = sock.branch
        store = self._store
        recent = await store.orders(self.merchant, branch=branch, limit=RECENT_ORDERS_MAX)
        listed = {o.id: o for o in recent}
        for entry in await store.queue(self.merchant, branch):  # older ones still waiting
            order = None if entry.order in listed else await store.order(self.merchant, entry.order)
            if order is not None:
                listed[order.id] = order
        orders = sorted(listed.values(), key=lambda o: o.placed_at_ms, reverse=True)
        found = self.branches.get(branch) or await store.branch(branch)
        assert found is not None, "the socket's branch was found before it joined"
        return {
            "branch": {"id": found.id, "name": found.name, "is_open": found.is_open},
            "show": present_show(self.show, branch),
            "viewers": self.viewers.get(branch, 0),
            "orders": [present_order(o, for_shopper=False) for o in orders],
            "customers": await self.customers_of(branch),
            **await self.statement_of(branch, sock.since_ms),
        }


class ConsoleFeeds:
    """This node's feeds, one per merchant in use, and the sockets' entry point."""

    def __init__(self, store: Store, bus: Bus, viewers: ViewerCount) -> None:
        self._store = store
        self._bus = bus
        self._viewers = viewers
        self._feeds: dict[MerchantId, MerchantFeed] = {}
        self._loading: dict[MerchantId, asyncio.Future[MerchantFeed]] = {}
        self._reaper: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap())

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            await feed.close()

    async def close_sockets(self) -> None:
        sockets = [s for feed in self._feeds.values() for s in feed.sockets]
        await asyncio.gather(
            *(s.ws.close(code=1001, message=b"server restarting") for s in sockets),
            return_exceptions=True,
        )

    async def feed(self, merchant: MerchantId) -> MerchantFeed:
        found = self._feeds.get(merchant)
        if found is not None and found.broken:
            del self._feeds[merchant]
            await found.close()
        elif found is not None:
            found.last_used = time.monotonic()
            return found
        loading = self._loading.get(merchant)
        if loading is None:
            loading = self._loading[merchant] = asyncio.ensure_future(self._load(merchant))
        try:
            return await asyncio.shield(loading)
        finally:
            if loading.done():
                self._loading.pop(merchant, None)

    async def _load(self, merchant: MerchantId) -> MerchantFeed:
        feed = MerchantFeed(merchant, self._store, self._bus, self._viewers)
        await feed.start()
        self._feeds[merchant] = feed
        return feed

    async def serve(
        self,
        request: web.Request,
        merchant: MerchantId,
        branch: BranchId | None,
        since_ms: int,
        session: bytes | None,
    ) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(
            compress=False, max_msg_size=INBOUND_BYTES_MAX + 1, heartbeat=30.0, autoping=True
        )
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None
        feed = await self.feed(merchant)
        await feed.serve(ws, ConsoleSocket(ws, transport, branch, since_ms, session))
        return ws

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(IDLE_S / 4)
            now_s = time.monotonic()
            for merchant, feed in list(self._feeds.items()):
                if feed.idle(now_s):
                    del self._feeds[merchant]
                    await feed.close()

    def counts(self) -> dict[str, int]:
        return {
            "feeds": len(self._feeds),
            "sockets": sum(len(f.sockets) for f in self._feeds.values()),
        }
