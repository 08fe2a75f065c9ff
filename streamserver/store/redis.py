"""The distributed store: every merchant's state in one Redis, shared by every node.

Commerce state changes only through `apply_plan.lua`, one generic script that applies a
batch of plans of one merchant, each whole or not at all (DESIGN.md "Money and stock").
`apply()` calls made for the same merchant in the same event-loop tick share one script
call: redis-py spends about 116 µs of client CPU per awaited command and the script
about 30 µs per plan, so coalescing is what makes the apply step fast. Every plan's
guards still decide alone, and its caller is answered with its own result.

Keys carry the merchant as a hash tag, `{m:<merchant>}:...`: a Redis Cluster keeps a
merchant on one shard and every key of a script in one slot; the script touches only
keys passed in KEYS. A few global keys (`lianbo:...`) index what is looked up by id
alone (a branch, a show) or across merchants (live shows, merchants with scheduled
expiries); the script never touches them.

Time guards use the script's TIME, so all nodes agree. Reservation expiry is a sorted
set of due times per merchant, read by the server's sweeper (`due_expiries`), never
key-expiry events. Bearer tokens are stored as SHA-256 digests, as in sqlite.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Final, assert_never

import msgpack
import orjson
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ResponseError

from commerce.access import Role
from commerce.cards import Card
from commerce.catalog import Branch, Merchant, Product, Sku, StockLevel, Terms
from commerce.ids import (
    Amount,
    BranchId,
    CardId,
    MerchantId,
    OrderId,
    ShopperId,
    ShowId,
    SkuId,
)
from commerce.ledger import Transfer, stored_value
from commerce.orders import Order, OrderingView, awaits_pickup
from commerce.plan import (
    AckFulfillment,
    AppendOutbox,
    AttributeCustomer,
    BalanceAtLeast,
    BeforeTime,
    BoughtAtMost,
    CancelExpiry,
    CountBought,
    EnqueueFulfillment,
    Guard,
    HoldStoredValue,
    KeyUnseen,
    MoveStock,
    NotBeforeTime,
    OrderInState,
    Plan,
    PostTransfer,
    PutOrder,
    Reason,
    Refusal,
    ReleaseHold,
    RememberKey,
    ScheduleExpiry,
    StockAtLeast,
    StockMove,
)
from commerce.pricing import Offer
from commerce.shows import Show, ShowStatus
from streamserver.store import codec
from streamserver.store.port import (
    Applied,
    ApplyResult,
    Customer,
    Durability,
    OutboxEntry,
    QueueEntry,
    Replayed,
    Session,
    StockChange,
    Store,
    StoredValue,
    User,
)
from streamserver.store.redis_rows import (
    branch_from_row,
    branches_from_rows,
    prefix,
    sku_from_row,
)
from streamserver.store.redis_views import OrderingViews
from streamserver.store.redis_wire import Script, Wire

BATCH_PLANS_MAX: Final = 32  # per script call: ~1 ms of Redis time; 2+ calls in flight overlap
CONNECTIONS_MAX: Final = 32
GROUP: Final = "fulfillment"  # the consumer group of every branch queue (apply_plan.lua)

# The merchant's keys every script call declares, in the order of apply_plan.lua's K_*.
FIXED_KEYS: Final = (
    "balance",  # hash: ledger account -> credits - debits
    "held",  # hash: shopper -> stored value held for open orders
    "holds",  # hash: order -> amount held (two-phase, pending)
    "bought",  # hash: "shopper|sku" -> units bought (per-shopper limits)
    "orders",  # hash: order -> codec.order_to_dict JSON, and "state:<order>" -> its state
    "transfers",  # hash: transfer id -> JSON (immutable)
    "transfers:by_time",  # zset: transfer id by at_ms (statements)
    "customer",  # hash: shopper -> the branch that first sold to them
    "expiry",  # zset: order by due_ms (the sweeper's index)
    "outbox",  # stream: entry 0-<seq>, field "event"
    "stock:index",  # set: "branch|sku" with a stock hash
    "queue:pos",  # hash: order -> its entry id in the fulfilling branch's queue stream
)
# Per-entity keys (declared per batch): "stock:<branch>:<sku>" hash of the four stock
# columns; "key:<shopper>:<key>" idempotency record "<order> <digest>", expiring;
# "orders:branch:<branch>" and "orders:shopper:<shopper>" zsets of orders by
# placed_at_ms (a branch's lists what it sold and what it fulfils); "customers:<branch>"
# zset of shoppers by first touch; "queue:<branch>" stream with consumer group GROUP;
# "pickup:<branch>" zset (all scores 0) of "<pickup code>:<order>" awaiting pickup there.

# Global keys: looked up by id alone or across merchants; never inside the script. On a
# Cluster they live in other slots than the merchants' keys, hence separate commands.
BRANCH_OWNER: Final = "lianbo:branch:"  # + branch id -> merchant
SHOW_OWNER: Final = "lianbo:show:"  # + show id -> merchant
LIVE_SHOWS: Final = "lianbo:shows:live"  # set of show ids
EXPIRING: Final = "lianbo:expiring"  # set of merchants that ever scheduled an expiry
SESSION: Final = "lianbo:session:"  # + hex SHA-256 of the token -> actor, until it expires
USER_MERCHANTS: Final = "lianbo:user:"  # + username -> set of merchants with a user so named

# MoveStock as deltas of (received, available, reserved, sold) per unit.
_STOCK_DELTAS: Final = {
    StockMove.RECEIVE: (1, 1, 0, 0),
    StockMove.RESERVE: (0, -1, 1, 0),
    StockMove.RELEASE: (0, 1, -1, 0),
    StockMove.SELL: (0, 0, -1, 1),
    StockMove.RETURN: (0, 1, 0, -1),
}


class BrokenInvariant(AssertionError):
    """A plan would break a store invariant (a bug in the core): it was not applied."""


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _refusal(guard: Guard) -> Refusal:
    match guard:
        case KeyUnseen():
            return Refusal(Reason.KEY_REUSED, field="key")
        case StockAtLeast():
            return Refusal(Reason.SOLD_OUT)
        case BalanceAtLeast():
            return Refusal(Reason.INSUFFICIENT_BALANCE)
        case BoughtAtMost():
            return Refusal(Reason.OVER_LIMIT)
        case OrderInState():
            return Refusal(Reason.NOT_ALLOWED_IN_STATE)
        case BeforeTime(_, reason) | NotBeforeTime(_, reason):
            return Refusal(reason)
        case _:
            assert_never(guard)


@dataclass(slots=True)
class _Pending:
    plan: Plan
    moves: list[tuple[BranchId, SkuId]]  # one per MoveStock, in order
    future: asyncio.Future[ApplyResult]


@dataclass(slots=True)
class _Batch:
    """Plans of one merchant for one script call, encoded as apply_plan.lua reads them."""

    merchant: MerchantId
    prefix: str
    keys: list[str]
    slots: dict[str, int] = field(default_factory=dict)  # key suffix -> 1-based KEYS index
    ops: list[Any] = field(default_factory=list)  # every plan's, flat (apply_plan.lua)
    pending: list[_Pending] = field(default_factory=list)
    schedules_expiry: bool = False
    sent: bool = False

    @classmethod
    def new(cls, merchant: MerchantId) -> _Batch:
        p = prefix(merchant)
        keys = [p + name for name in FIXED_KEYS]
        return cls(merchant, p, keys, {name: i for i, name in enumerate(FIXED_KEYS, 1)})

    def key(self, suffix: str) -> int:
        index = self.slots.get(suffix)
        if index is None:
            self.keys.append(self.prefix + suffix)
            index = self.slots[suffix] = len(self.keys)
        return index

    def add(self, plan: Plan, future: asyncio.Future[ApplyResult]) -> None:
        """Encode `plan` flat, as apply_plan.lua walks it: the guard count, the write
        count, the plan's length, then each op's code and fields (the layouts are
        commented there). Ops are told apart by exact type, most frequent first (a
        purchase's, then a transition's): with class patterns in a `match`, encoding a
        purchase's plan took 10.4 us, with these `is` tests 6.7."""
        key = self.key
        ops: list[Any] = [len(plan.guards), len(plan.writes), 0]
        for g in plan.guards:
            if type(g) is KeyUnseen:
                ops += (1, key(f"key:{g.shopper}:{g.key}"), g.body_digest)
            elif type(g) is StockAtLeast:
                ops += (2, key(f"stock:{g.branch}:{g.sku}"), g.qty)
            elif type(g) is BalanceAtLeast:
                ops += (3, stored_value(g.shopper), g.shopper, g.amount)
            elif type(g) is BoughtAtMost:
                ops += (4, f"{g.shopper}|{g.sku}", g.qty)
            elif type(g) is OrderInState:
                ops += (5, g.order, g.state.value)
            elif type(g) is BeforeTime:
                ops += (6, g.deadline_ms)
            elif type(g) is NotBeforeTime:
                ops += (7, g.due_ms)
            else:
                assert_never(g)
        moves: list[tuple[BranchId, SkuId]] = []
        for w in plan.writes:
            if type(w) is MoveStock:
                dr, da, dv, ds = _STOCK_DELTAS[w.move]
                q = w.qty
                member = f"{w.branch}|{w.sku}" if w.move is StockMove.RECEIVE else ""
                k = key(f"stock:{w.branch}:{w.sku}")
                ops += (1, k, dr * q, da * q, dv * q, ds * q, member)
                moves.append((w.branch, w.sku))
            elif type(w) is CountBought:
                ops += (5, f"{w.shopper}|{w.sku}", w.qty)
            elif type(w) is PutOrder:
                o = w.order
                pickup = 0 if o.pickup_code is None else key(f"pickup:{o.ship_from}")
                ops += (
                    6,
                    o.id,
                    o.state.value,
                    orjson.dumps(codec.order_to_dict(o)),
                    o.placed_at_ms,
                    key(f"orders:branch:{o.branch}"),
                    key(f"orders:branch:{o.ship_from}"),
                    key(f"orders:shopper:{o.shopper}"),
                    pickup,
                    f"{o.pickup_code}:{o.id}",
                    int(awaits_pickup(o)),
                )
            elif type(w) is RememberKey:
                k = key(f"key:{w.shopper}:{w.key}")
                ops += (7, k, f"{w.order} {w.body_digest}", w.expires_at_ms)
            elif type(w) is AttributeCustomer:
                ops += (8, w.shopper, w.branch, w.at_ms, key(f"customers:{w.branch}"))
            elif type(w) is ScheduleExpiry:
                ops += (9, w.order, w.due_ms)
                self.schedules_expiry = True
            elif type(w) is EnqueueFulfillment:
                ops += (11, key(f"queue:{w.branch}"), w.order)
            elif type(w) is AppendOutbox:
                ops += (13, orjson.dumps(codec.event_to_dict(w.event)))
            elif type(w) is AckFulfillment:
                ops += (12, key(f"queue:{w.branch}"), w.order)
            elif type(w) is CancelExpiry:
                ops += (10, w.order)
            elif type(w) is HoldStoredValue:
                ops += (2, w.shopper, w.order, w.amount)
            elif type(w) is ReleaseHold:
                ops += (3, w.shopper, w.order, w.amount)
            elif type(w) is PostTransfer:
                tr = w.transfer
                body = orjson.dumps(codec.transfer_to_dict(tr))
                debit_shopper = tr.debit[3:] if tr.debit.startswith("sv:") else ""
                ops += (4, tr.id, tr.debit, tr.credit, tr.amount, tr.at_ms, body, debit_shopper)
            else:
                assert_never(w)
        ops[2] = len(ops)
        self.ops += ops
        self.pending.append(_Pending(plan, moves, future))


def _answer(pending: _Pending, answer: list[Any]) -> ApplyResult | BrokenInvariant:
    kind = answer[0]
    if kind == 0:
        changes = zip(pending.moves, answer[1:], strict=True)
        return Applied(tuple(StockChange(b, s, int(a)) for (b, s), a in changes))
    if kind == 1:
        return _refusal(pending.plan.guards[answer[1] - 1])
    if kind == 2:
        return Replayed(OrderId(answer[1]))
    return BrokenInvariant(answer[1])


def _scored(rows: Any) -> list[tuple[str, float]]:
    """A ZRANGE ... WITHSCORES reply (decoded strings) as (member, score) pairs."""
    return [(str(member), float(score)) for member, score in rows]


def _stream_id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq)


class RedisStore:
    """Every merchant's state in the Redis at `url` (`lianbo serve --redis-url`)."""

    def __init__(
        self, url: str, *, connections_max: int = CONNECTIONS_MAX, consumer: str = "console"
    ) -> None:
        self._url = url
        self._connections_max = connections_max
        self._consumer = consumer  # one name for all nodes: every node sees the same queue
        self._client: Redis | None = None
        self._apply = Script(
            resources.files("streamserver.store").joinpath("apply_plan.lua").read_text()
        )
        self._wire = Wire(url)  # the purchase path's script calls (store/redis_wire.py)
        self._open_batches: dict[MerchantId, _Batch] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._expiring_known: set[MerchantId] = set()
        self._views: OrderingViews | None = None

    # -- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        pool = BlockingConnectionPool.from_url(
            self._url, max_connections=self._connections_max, decode_responses=True, protocol=2
        )
        self._client = Redis(connection_pool=pool)
        await self._wire.call("SCRIPT", "LOAD", self._apply.text)
        self._views = OrderingViews(self._wire)

    async def close(self) -> None:
        for batch in list(self._open_batches.values()):
            self._send(batch)
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        if self._views is not None:
            await self._views.close()
            self._views = None
        await self._wire.close()
        if self._client is not None:
            await self._client.aclose(close_connection_pool=True)
            self._client = None

    @property
    def _redis(self) -> Redis:
        assert self._client is not None, "store used before open()"
        return self._client

    async def durability(self) -> Durability:
        try:
            pipe = self._redis.pipeline(transaction=False)
            for name in ("appendonly", "appendfsync", "save"):
                pipe.config_get(name)
            replies = await pipe.execute()
        except ResponseError as exc:  # CONFIG renamed or denied (managed Redis)
            return Durability(
                False, f"cannot read Redis CONFIG ({exc}): assume acknowledged orders can be lost"
            )
        config: dict[str, str] = {}
        for reply in replies:
            config.update(reply)
        aof = config.get("appendonly") == "yes"
        fsync = config.get("appendfsync", "")
        snapshots = config.get("save", "")
        failover = "; a failover to a replica can still lose acknowledged writes"
        if aof and fsync == "always":
            detail = "Redis AOF with appendfsync always: each write is on disk before the answer"
            return Durability(True, detail + failover)
        if aof and fsync == "everysec":
            detail = "Redis AOF with appendfsync everysec: a crash can lose about the last second"
        elif aof:
            detail = f"Redis AOF with appendfsync {fsync}: a crash can lose what the OS had not"
            detail += " flushed (up to about 30 s)"
        elif snapshots:
            detail = f"Redis without AOF, snapshots only (save {snapshots}): a crash loses every"
            detail += " order since the last snapshot"
        else:
            detail = "Redis without AOF or snapshots: a crash loses every order"
        return Durability(False, detail + failover)

    # -- commerce: applying plans -------------------------------------------------------

    async def apply(self, merchant_id: MerchantId, plan: Plan) -> ApplyResult:
        """Apply `plan` atomically, in one script call with the merchant's other plans
        of this loop tick; answers Applied, Replayed or the first failing guard's Refusal.
        Raises BrokenInvariant (nothing written) if the plan would break an invariant."""
        batch = self._open_batches.get(merchant_id)
        loop = asyncio.get_running_loop()
        if batch is None:
            batch = self._open_batches[merchant_id] = _Batch.new(merchant_id)
            loop.call_soon(self._send, batch)
        future: asyncio.Future[ApplyResult] = loop.create_future()
        batch.add(plan, future)
        if len(batch.pending) >= BATCH_PLANS_MAX:
            self._send(batch)
        return await future

    def _send(self, batch: _Batch) -> None:
        if batch.sent:
            return
        batch.sent = True
        if self._open_batches.get(batch.merchant) is batch:
            del self._open_batches[batch.merchant]
        if not batch.pending:  # its only plan failed to encode (and raised to its caller)
            return
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, batch: _Batch) -> None:
        # Callers are answered from here; cancelling a caller never cancels this call,
        # so a connection is never left with a reply unread (CVE-2023-28858/28859).
        try:
            if batch.schedules_expiry and batch.merchant not in self._expiring_known:
                # Before the script: the registry may name a merchant with nothing due,
                # never miss one with something due.
                await self._redis.sadd(EXPIRING, batch.merchant)
                self._expiring_known.add(batch.merchant)
            # use_bin_type=False: Redis's cmsgpack predates the bin type; JSON bodies are
            # bytes here (orjson) and must reach Lua as strings.
            argument = msgpack.packb(batch.ops, use_bin_type=False)
            raw = await self._apply.run(self._wire, batch.keys, [argument])
            answers = orjson.loads(raw)
            assert len(answers) == len(batch.pending), "one answer per plan"
            for p, answer in zip(batch.pending, answers, strict=True):
                if p.future.done():  # the caller was cancelled; the plan still counted
                    continue
                result = _answer(p, answer)
                if isinstance(result, BrokenInvariant):
                    p.future.set_exception(result)
                else:
                    p.future.set_result(result)
        except Exception as exc:  # the outcome is unknown: every caller still waiting learns why
            for p in batch.pending:
                if not p.future.done():
                    p.future.set_exception(exc)

    # -- commerce: reads ----------------------------------------------------------------

    async def ordering_view(
        self, merchant_id: MerchantId, selling: BranchId, shopper: ShopperId, skus: Sequence[SkuId]
    ) -> OrderingView | None:
        assert self._views is not None, "store used before open()"
        return await self._views.view(merchant_id, selling, shopper, skus)

    async def order(self, merchant_id: MerchantId, order_id: OrderId) -> Order | None:
        body = await self._redis.hget(prefix(merchant_id) + "orders", order_id)
        return None if body is None else codec.order_from_dict(orjson.loads(body))

    async def awaiting_pickup(
        self, merchant_id: MerchantId, branch: BranchId, code: str
    ) -> list[Order]:
        p = prefix(merchant_id)
        members = await self._redis.zrangebylex(f"{p}pickup:{branch}", f"[{code}:", f"({code};")
        if not members:
            return []
        ids = [str(member).partition(":")[2] for member in members]
        bodies = await self._redis.hmget(p + "orders", ids)
        return [codec.order_from_dict(orjson.loads(body)) for body in bodies if body is not None]

    async def orders(
        self,
        merchant_id: MerchantId,
        *,
        branch: BranchId | None = None,  # sold or fulfilled by this branch
        shopper: ShopperId | None = None,
        limit: int = 100,
    ) -> list[Order]:
        """Newest first (by placed_at_ms, then id), as sqlite.py lists them.

        A shopper's orders are few: their index is read whole and filtered by branch. A
        merchant's are the union of its branches' indexes (every order is in its selling
        branch's), merged here: the apply step keeps one index fewer."""
        if limit <= 0:
            return []
        p = prefix(merchant_id)
        if shopper is not None:
            ranked = await self._newest([f"{p}orders:shopper:{shopper}"], None)
        elif branch is not None:
            ranked = await self._newest([f"{p}orders:branch:{branch}"], limit)
        else:
            branch_ids = [str(b) for b in await self._redis.hkeys(p + "branches")]
            indexes = [f"{p}orders:branch:{b}" for b in branch_ids]
            ranked = await self._newest(indexes, limit)
        if not ranked:
            return []
        bodies = await self._redis.hmget(p + "orders", [order for order, _ in ranked])
        found = [codec.order_from_dict(orjson.loads(b)) for b in bodies if b is not None]
        if shopper is not None and branch is not None:
            found = [o for o in found if branch in (o.branch, o.ship_from)]
        return found[:limit]

    async def _newest(self, indexes: list[str], limit: int | None) -> list[tuple[str, float]]:
        """The first `limit` (all if None) members of the union of sorted sets, by score
        descending then member ascending: each set's top `limit`, plus every member tied
        with the last one taken (ZREVRANGE orders ties by member descending)."""
        last = -1 if limit is None else limit - 1
        pipe = self._redis.pipeline(transaction=False)
        for index in indexes:
            pipe.zrevrange(index, 0, last, withscores=True)
        merged = {m: s for reply in await pipe.execute() for m, s in _scored(reply)}
        ranked = sorted(merged.items(), key=lambda pair: (-pair[1], pair[0]))
        if limit is not None and len(ranked) >= limit:
            edge = ranked[limit - 1][1]
            pipe = self._redis.pipeline(transaction=False)
            for index in indexes:
                pipe.zrangebyscore(index, edge, edge, withscores=True)
            for reply in await pipe.execute():
                merged.update(_scored(reply))
            ranked = sorted(merged.items(), key=lambda pair: (-pair[1], pair[0]))[:limit]
        return ranked

    async def stock(self, merchant_id: MerchantId) -> dict[tuple[BranchId, SkuId], StockLevel]:
        p = prefix(merchant_id)
        members = sorted(await self._redis.smembers(p + "stock:index"))
        pipe = self._redis.pipeline(transaction=False)
        pairs: list[tuple[BranchId, SkuId]] = []
        for member in members:
            branch, _, sku = str(member).partition("|")
            pairs.append((BranchId(branch), SkuId(sku)))
            pipe.hmget(f"{p}stock:{branch}:{sku}", ["received", "available", "reserved", "sold"])
        levels: dict[tuple[BranchId, SkuId], StockLevel] = {}
        for pair, row in zip(pairs, await pipe.execute(), strict=True):
            received, available, reserved, sold = (int(v or 0) for v in row)
            levels[pair] = StockLevel(
                received=received, available=available, reserved=reserved, sold=sold
            )
        return levels

    async def stored_value(self, merchant_id: MerchantId, shopper: ShopperId) -> StoredValue:
        p = prefix(merchant_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hget(p + "balance", stored_value(shopper))
        pipe.hget(p + "held", shopper)
        balance, held = await pipe.execute()
        return StoredValue(Amount(int(balance or 0)), Amount(int(held or 0)))

    async def transfers(
        self, merchant_id: MerchantId, from_ms: int = 0, to_ms: int = 2**62
    ) -> list[Transfer]:
        """Transfers with from_ms <= at_ms < to_ms, by time (then id)."""
        p = prefix(merchant_id)
        key = p + "transfers:by_time"
        ids = [str(i) for i in await self._redis.zrangebyscore(key, from_ms, f"({to_ms}")]
        if not ids:
            return []
        bodies = await self._redis.hmget(p + "transfers", ids)
        return [codec.transfer_from_dict(orjson.loads(b)) for b in bodies if b is not None]

    async def account_balances(self, merchant_id: MerchantId) -> dict[str, int]:
        """Every ledger account's stored balance (credits - debits)."""
        balances = await self._redis.hgetall(prefix(merchant_id) + "balance")
        return {str(account): int(v) for account, v in balances.items()}

    async def customers(self, merchant_id: MerchantId, branch: BranchId) -> list[Customer]:
        key = f"{prefix(merchant_id)}customers:{branch}"
        rows = _scored(await self._redis.zrange(key, 0, -1, withscores=True))
        return [Customer(ShopperId(s), branch, int(t)) for s, t in rows]

    async def due_expiries(self, now_ms: int, limit: int) -> list[tuple[MerchantId, OrderId]]:
        """Orders whose pickup hold ended by `now_ms`, soonest due first, across merchants."""
        merchants = sorted(str(m) for m in await self._redis.smembers(EXPIRING))
        if not merchants or limit <= 0:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for m in merchants:
            pipe.zrangebyscore(
                prefix(MerchantId(m)) + "expiry", "-inf", now_ms, 0, limit, withscores=True
            )
        due: list[tuple[float, MerchantId, OrderId]] = []
        for m, rows in zip(merchants, await pipe.execute(), strict=True):
            due += [(t, MerchantId(m), OrderId(o)) for o, t in rows]
        due.sort()
        return [(m, o) for _, m, o in due[:limit]]

    async def queue(
        self, merchant_id: MerchantId, branch: BranchId, limit: int = 100
    ) -> list[QueueEntry]:
        """The branch's unacknowledged orders in acceptance order: entries delivered before
        (pending) come again, then new ones; both reads in one MULTI so no node interleaves."""
        key = f"{prefix(merchant_id)}queue:{branch}"
        pipe = self._redis.pipeline(transaction=True)
        pipe.xreadgroup(GROUP, self._consumer, {key: "0"}, count=limit)
        pipe.xreadgroup(GROUP, self._consumer, {key: ">"}, count=limit)
        try:
            replies: list[Any] = await pipe.execute()
        except ResponseError as exc:
            if "NOGROUP" in str(exc):  # nothing was ever queued for this branch
                return []
            raise
        entries: list[QueueEntry] = []
        for reply in replies:
            for _stream, rows in reply or []:
                entries += [QueueEntry(i, OrderId(f["order"])) for i, f in rows if f]
        entries.sort(key=lambda e: _stream_id(e.id))
        return entries[:limit]

    async def outbox(
        self, merchant_id: MerchantId, after_seq: int, limit: int = 100
    ) -> list[OutboxEntry]:
        key = prefix(merchant_id) + "outbox"
        rows = await self._redis.xrange(key, f"0-{after_seq + 1}", "+", count=limit)
        return [
            OutboxEntry(_stream_id(str(i))[1], codec.event_from_dict(orjson.loads(str(f["event"]))))
            for i, f in rows or []
            if f is not None
        ]

    # -- cards --------------------------------------------------------------------------

    async def put_card(self, merchant_id: MerchantId, card: Card) -> None:
        """Pin or update a card; a show's cards stay in the order first pinned."""
        p = prefix(merchant_id)
        key = f"{p}cards:{card.show}"
        existing = await self._redis.hget(key, card.id)
        if existing is None:
            seq = await self._redis.hincrby(p + "merchant", "card_seq", 1)
        else:
            old = orjson.loads(existing)
            seq = old["seq"]
            await self._redis.hdel(f"{p}pins:{old['card']['sku']}", f"{card.show}|{card.id}")
        body = codec.dumps({"card": codec.card_to_dict(card), "seq": seq})
        await self._redis.hset(key, card.id, body)
        await self._redis.hset(f"{p}pins:{card.sku}", f"{card.show}|{card.id}", 1)

    async def remove_card(self, merchant_id: MerchantId, show: ShowId, card: CardId) -> None:
        p = prefix(merchant_id)
        key = f"{p}cards:{show}"
        existing = await self._redis.hget(key, card)
        if existing is not None:
            sku = orjson.loads(existing)["card"]["sku"]
            await self._redis.hdel(key, card)
            await self._redis.hdel(f"{p}pins:{sku}", f"{show}|{card}")

    async def cards(self, show: ShowId) -> list[Card]:
        merchant = await self._show_merchant(show)
        if merchant is None:
            return []
        rows = await self._redis.hvals(f"{prefix(merchant)}cards:{show}")
        decoded = sorted((orjson.loads(r) for r in rows), key=lambda d: int(d["seq"]))
        return [codec.card_from_dict(d["card"]) for d in decoded]

    async def shows_pinning(self, merchant_id: MerchantId, sku: SkuId) -> list[ShowId]:
        pins = await self._redis.hkeys(f"{prefix(merchant_id)}pins:{sku}")
        return sorted({ShowId(str(pin).partition("|")[0]) for pin in pins})

    # -- identities ---------------------------------------------------------------------

    async def create_user(self, user: User) -> bool:
        """False if the merchant already has a user of that name."""
        body = {
            "role": user.role.value,
            "branch": user.branch,
            "password_hash": user.password_hash,
        }
        key = prefix(user.merchant) + "users"
        if not await self._redis.hsetnx(key, user.username, codec.dumps(body)):
            return False
        # Another slot on a Cluster, hence a second command; a crash between the two
        # leaves a user who must name the merchant to sign in, never a wrong one.
        await self._redis.sadd(USER_MERCHANTS + user.username, user.merchant)
        return True

    async def user(self, merchant_id: MerchantId, username: str) -> User | None:
        body = await self._redis.hget(prefix(merchant_id) + "users", username)
        if body is None:
            return None
        d = orjson.loads(body)
        return User(
            merchant=merchant_id,
            username=username,
            role=Role(d["role"]),
            branch=None if d["branch"] is None else BranchId(d["branch"]),
            password_hash=d["password_hash"],
        )

    async def users_named(self, username: str, limit: int = 10) -> list[User]:
        """Every merchant's user of that name: staff sign in by email alone."""
        members = await self._redis.smembers(USER_MERCHANTS + username)
        merchants = sorted(str(m) for m in members)[:limit]
        found = [await self.user(MerchantId(m), username) for m in merchants]
        return [user for user in found if user is not None]

    async def create_shopper(self, merchant_id: MerchantId, shopper: ShopperId, name: str) -> None:
        if not await self._redis.hsetnx(prefix(merchant_id) + "shoppers", shopper, name):
            raise ValueError(f"shopper {shopper} exists")

    async def shopper_name(self, merchant_id: MerchantId, shopper: ShopperId) -> str | None:
        name = await self._redis.hget(prefix(merchant_id) + "shoppers", shopper)
        return None if name is None else str(name)

    async def create_session(self, token_sha256: bytes, session: Session) -> None:
        """Kept until it expires (Redis drops it then; the caller checks the time too)."""
        body = {"actor": codec.actor_to_dict(session.actor), "expires_at_ms": session.expires_at_ms}
        key = SESSION + token_sha256.hex()
        await self._redis.set(key, codec.dumps(body), pxat=session.expires_at_ms)

    async def session(self, token_sha256: bytes) -> Session | None:
        body = await self._redis.get(SESSION + token_sha256.hex())
        if body is None:
            return None
        d = orjson.loads(body)
        return Session(codec.actor_from_dict(d["actor"]), int(d["expires_at_ms"]))

    async def delete_session(self, token_sha256: bytes) -> None:
        await self._redis.delete(SESSION + token_sha256.hex())

    async def forget_expired_sessions(self, now_ms: int, limit: int) -> int:
        return 0  # each session key carries its own expiry (PXAT): Redis drops it

    # -- catalog ------------------------------------------------------------------------

    async def put_product(self, product: Product) -> None:
        body = codec.dumps({"id": product.id, "name": product.name})
        await self._redis.hset(prefix(product.merchant) + "products", product.id, body)

    async def put_sku(self, sku: Sku) -> None:
        """Insert, or update the name and price (the product stays), like sqlite.py."""
        p = prefix(sku.merchant)
        existing = await self._redis.hget(p + "skus", sku.id)
        if existing is None:
            seq, product = await self._redis.hincrby(p + "merchant", "sku_seq", 1), sku.product
        else:
            old = orjson.loads(existing)
            seq, product = old["seq"], old["product"]
        body = {"id": sku.id, "product": product, "name": sku.name, "price": sku.price, "seq": seq}
        await self._redis.hset(p + "skus", sku.id, codec.dumps(body))

    async def skus(self, merchant_id: MerchantId) -> list[Sku]:
        """In the order they were first put."""
        rows = await self._redis.hvals(prefix(merchant_id) + "skus")
        decoded = sorted((orjson.loads(r) for r in rows), key=lambda d: int(d["seq"]))
        return [sku_from_row(merchant_id, d) for d in decoded]

    async def put_offer(self, merchant_id: MerchantId, offer: Offer) -> None:
        body = codec.dumps(codec.offer_to_dict(offer))
        await self._redis.hset(prefix(merchant_id) + "offers", offer.sku, body)

    async def remove_offer(self, merchant_id: MerchantId, sku: SkuId) -> None:
        await self._redis.hdel(prefix(merchant_id) + "offers", sku)

    async def offers(self, merchant_id: MerchantId) -> dict[SkuId, Offer]:
        rows = await self._redis.hvals(prefix(merchant_id) + "offers")
        found = [codec.offer_from_dict(orjson.loads(r)) for r in rows]
        return {o.sku: o for o in found}

    # -- directory ----------------------------------------------------------------------

    async def create_merchant(self, merchant: Merchant, operator_token: str) -> None:
        p = prefix(merchant.id)
        if not await self._redis.hsetnx(p + "merchant", "name", merchant.name):
            raise ValueError(f"merchant {merchant.id} exists")
        await self._redis.hset(p + "tokens", "operator", token_digest(operator_token))

    async def merchant(self, merchant_id: MerchantId) -> Merchant | None:
        name = await self._redis.hget(prefix(merchant_id) + "merchant", "name")
        return None if name is None else Merchant(merchant_id, str(name))

    async def is_operator_token(self, merchant_id: MerchantId, token: str) -> bool:
        return await self._token_matches(merchant_id, "operator", token)

    async def set_terms(self, merchant_id: MerchantId, terms: Terms) -> None:
        body = codec.dumps(codec.terms_to_dict(terms))
        await self._redis.hset(prefix(merchant_id) + "merchant", "terms", body)

    async def terms(self, merchant_id: MerchantId) -> Terms:
        body = await self._redis.hget(prefix(merchant_id) + "merchant", "terms")
        return Terms() if body is None else codec.terms_from_dict(orjson.loads(body))

    async def create_branch(self, branch: Branch) -> None:
        if not await self._redis.setnx(BRANCH_OWNER + branch.id, branch.merchant):
            raise ValueError(f"branch {branch.id} exists")
        p = prefix(branch.merchant)
        seq = await self._redis.hincrby(p + "merchant", "branch_seq", 1)
        await self._redis.hset(p + "branches", branch.id, _branch_body(branch, seq))

    async def update_branch(self, branch: Branch) -> None:
        """Replace the branch's fields; a branch of another merchant is left alone."""
        p = prefix(branch.merchant)
        existing = await self._redis.hget(p + "branches", branch.id)
        if existing is not None:
            seq = int(orjson.loads(existing)["seq"])
            await self._redis.hset(p + "branches", branch.id, _branch_body(branch, seq))

    async def branch(self, branch_id: BranchId) -> Branch | None:
        merchant = await self._redis.get(BRANCH_OWNER + branch_id)
        if merchant is None:
            return None
        m = MerchantId(str(merchant))
        body = await self._redis.hget(prefix(m) + "branches", branch_id)
        return None if body is None else branch_from_row(m, orjson.loads(body))

    async def branches(self, merchant_id: MerchantId) -> list[Branch]:
        rows = await self._redis.hgetall(prefix(merchant_id) + "branches")
        return branches_from_rows(merchant_id, [str(body) for body in rows.values()])

    async def create_show(self, show: Show, host_token: str) -> None:
        if not await self._redis.setnx(SHOW_OWNER + show.id, show.merchant):
            raise ValueError(f"show {show.id} exists")
        p = prefix(show.merchant)
        seq = await self._redis.hincrby(p + "merchant", "show_seq", 1)  # lists newest first
        body = codec.dumps({"id": show.id, "title": show.title, "seq": seq})
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(p + "shows", show.id, body)
        pipe.hset(p + "show_status", show.id, show.status.value)
        pipe.hset(p + "tokens", f"show:{show.id}", token_digest(host_token))
        await pipe.execute()
        if show.status is ShowStatus.LIVE:
            await self._redis.sadd(LIVE_SHOWS, show.id)

    async def show(self, show_id: ShowId) -> Show | None:
        merchant = await self._show_merchant(show_id)
        if merchant is None:
            return None
        p = prefix(merchant)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hget(p + "shows", show_id)
        pipe.hget(p + "show_status", show_id)
        body, status = await pipe.execute()
        if body is None or status is None:
            return None
        title = orjson.loads(body)["title"]
        return Show(id=show_id, merchant=merchant, title=title, status=ShowStatus(status))

    async def shows(self, merchant_id: MerchantId) -> list[Show]:
        p = prefix(merchant_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(p + "shows")
        pipe.hgetall(p + "show_status")
        bodies, statuses = await pipe.execute()
        found = []
        for show_id, body in bodies.items():
            status = statuses.get(show_id)
            if status is not None:
                fields = orjson.loads(body)
                show = Show(
                    id=ShowId(str(show_id)),
                    merchant=merchant_id,
                    title=fields["title"],
                    status=ShowStatus(status),
                )
                found.append((int(fields.get("seq", 0)), show))
        return [show for _, show in sorted(found, key=lambda pair: pair[0], reverse=True)]

    async def set_show_status(self, show_id: ShowId, status: ShowStatus) -> None:
        merchant = await self._show_merchant(show_id)
        if merchant is None:
            return
        # Listed as live before it is live, unlisted after it is not: the set may name a
        # show that is not live (pause_live_shows skips it), never miss one that is.
        if status is ShowStatus.LIVE:
            await self._redis.sadd(LIVE_SHOWS, show_id)
        await self._redis.hset(prefix(merchant) + "show_status", show_id, status.value)
        if status is not ShowStatus.LIVE:
            await self._redis.srem(LIVE_SHOWS, show_id)

    async def pause_live_shows(self) -> int:
        paused = 0
        for show_id in sorted(str(s) for s in await self._redis.smembers(LIVE_SHOWS)):
            merchant = await self._show_merchant(ShowId(show_id))
            if merchant is not None:
                key = prefix(merchant) + "show_status"
                if await self._redis.hget(key, show_id) == ShowStatus.LIVE.value:
                    await self._redis.hset(key, show_id, ShowStatus.PAUSED.value)
                    paused += 1
            await self._redis.srem(LIVE_SHOWS, show_id)
        return paused

    async def is_host_token(self, show_id: ShowId, token: str) -> bool:
        merchant = await self._show_merchant(show_id)
        return merchant is not None and await self._token_matches(
            merchant, f"show:{show_id}", token
        )

    async def _show_merchant(self, show_id: ShowId) -> MerchantId | None:
        merchant = await self._redis.get(SHOW_OWNER + show_id)
        return None if merchant is None else MerchantId(str(merchant))

    async def _token_matches(self, merchant_id: MerchantId, name: str, token: str) -> bool:
        stored = await self._redis.hget(prefix(merchant_id) + "tokens", name)
        return stored is not None and hmac.compare_digest(str(stored), token_digest(token))


def _branch_body(branch: Branch, seq: int) -> str:
    return codec.dumps(
        {
            "id": branch.id,
            "name": branch.name,
            "address": branch.address,
            "lat": branch.lat,
            "lng": branch.lng,
            "is_open": branch.is_open,
            "seq": seq,
        }
    )


def _conforms(store: RedisStore) -> Store:
    return store  # mypy checks here that RedisStore implements the whole port
