"""The embedded store: everything in one SQLite file, WAL mode.

Writes are ordered by one write loop, a task on the event loop (SQLite has one writer;
one loop makes that explicit). Plans waiting together are applied in one transaction by
a child process (store/sqlite_writer.py, store/sqlite_apply.py), so the commit (the
fsync) is shared and the statements' Python does not take the event loop's GIL: that is
what lets the embedded default take thousands of purchases per second with
`synchronous=FULL`. A plan's caller is answered only after the commit. Other writes run
one at a time on a write thread, between batches. Reads use separate connections on a
small thread pool (WAL readers never block the writer).

Bearer tokens are stored as SHA-256 digests: they are random 256-bit secrets, so a
slow password hash would add nothing.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

import orjson

from commerce.access import Role
from commerce.cards import Card
from commerce.catalog import Branch, Merchant, Product, Sku, StockLevel, Terms
from commerce.ids import (
    Amount,
    BranchId,
    CardId,
    MerchantId,
    OrderId,
    ProductId,
    ShopperId,
    ShowId,
    SkuId,
)
from commerce.ledger import Transfer
from commerce.orders import Order, OrderingView, awaits_pickup
from commerce.plan import Plan
from commerce.pricing import Offer
from commerce.shows import Show, ShowStatus
from streamserver.store import codec
from streamserver.store.ordering_memory import Catalog, Loaded, Missing, OrderingMemory
from streamserver.store.port import (
    Applied,
    ApplyResult,
    Customer,
    Durability,
    OutboxEntry,
    QueueEntry,
    Session,
    StoredValue,
    User,
)
from streamserver.store.sqlite_apply import Outcome, spendable_parts
from streamserver.store.sqlite_writer import PlanWriter, WriterLost, connect

logger = logging.getLogger(__name__)
T = TypeVar("T")

BATCH_PLANS_MAX: Final = 64  # plans sharing one commit
PLAN_BATCHES_IN_FLIGHT: Final = 2  # one applied, the next pickled and waiting

SCHEMA = """
CREATE TABLE IF NOT EXISTS merchant (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    operator_token_sha256 BLOB NOT NULL,
    terms TEXT
);
CREATE TABLE IF NOT EXISTS branch (
    id TEXT PRIMARY KEY,
    merchant TEXT NOT NULL REFERENCES merchant(id),
    name TEXT NOT NULL,
    address TEXT NOT NULL DEFAULT '',
    lat REAL,
    lng REAL,
    is_open INTEGER NOT NULL DEFAULT 1,
    created_seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS branch_by_merchant ON branch(merchant, created_seq);
CREATE TABLE IF NOT EXISTS show (
    id TEXT PRIMARY KEY,
    merchant TEXT NOT NULL REFERENCES merchant(id),
    title TEXT NOT NULL,
    status TEXT NOT NULL,
    host_token_sha256 BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS product (
    id TEXT PRIMARY KEY, merchant TEXT NOT NULL, name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sku (
    id TEXT PRIMARY KEY, merchant TEXT NOT NULL, product TEXT NOT NULL,
    name TEXT NOT NULL, price INTEGER NOT NULL CHECK (price >= 0)
);
CREATE INDEX IF NOT EXISTS sku_by_merchant ON sku(merchant);
CREATE TABLE IF NOT EXISTS offer (
    merchant TEXT NOT NULL, sku TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (merchant, sku)
);
CREATE TABLE IF NOT EXISTS stock (
    merchant TEXT NOT NULL, branch TEXT NOT NULL, sku TEXT NOT NULL,
    received INTEGER NOT NULL DEFAULT 0, available INTEGER NOT NULL DEFAULT 0,
    reserved INTEGER NOT NULL DEFAULT 0, sold INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (merchant, branch, sku),
    CHECK (available >= 0 AND reserved >= 0 AND sold >= 0),
    CHECK (received = available + reserved + sold)
);
CREATE INDEX IF NOT EXISTS stock_by_sku ON stock(merchant, sku);
CREATE TABLE IF NOT EXISTS account (
    merchant TEXT NOT NULL, id TEXT NOT NULL, balance INTEGER NOT NULL,
    PRIMARY KEY (merchant, id)
);
CREATE TABLE IF NOT EXISTS hold (
    merchant TEXT NOT NULL, order_id TEXT NOT NULL, shopper TEXT NOT NULL,
    amount INTEGER NOT NULL CHECK (amount > 0),
    PRIMARY KEY (merchant, order_id)
);
CREATE TABLE IF NOT EXISTS held (
    merchant TEXT NOT NULL, shopper TEXT NOT NULL, amount INTEGER NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (merchant, shopper)
);
CREATE TABLE IF NOT EXISTS transfer (
    merchant TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, at_ms INTEGER NOT NULL,
    PRIMARY KEY (merchant, id)
);
CREATE INDEX IF NOT EXISTS transfer_by_time ON transfer(merchant, at_ms);
CREATE TABLE IF NOT EXISTS bought (
    merchant TEXT NOT NULL, shopper TEXT NOT NULL, sku TEXT NOT NULL, qty INTEGER NOT NULL,
    PRIMARY KEY (merchant, shopper, sku)
);
CREATE TABLE IF NOT EXISTS orders (
    merchant TEXT NOT NULL, id TEXT NOT NULL, branch TEXT NOT NULL, ship_from TEXT NOT NULL,
    shopper TEXT NOT NULL, state TEXT NOT NULL, placed_at_ms INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (merchant, id)
);
CREATE INDEX IF NOT EXISTS orders_by_branch ON orders(merchant, branch, placed_at_ms);
CREATE INDEX IF NOT EXISTS orders_by_ship_from ON orders(merchant, ship_from, placed_at_ms);
CREATE INDEX IF NOT EXISTS orders_by_shopper ON orders(merchant, shopper, placed_at_ms);
CREATE TABLE IF NOT EXISTS pickup_wait (
    merchant TEXT NOT NULL, order_id TEXT NOT NULL, branch TEXT NOT NULL, code TEXT NOT NULL,
    PRIMARY KEY (merchant, order_id)
);
CREATE INDEX IF NOT EXISTS pickup_wait_by_code ON pickup_wait(merchant, branch, code);
CREATE TABLE IF NOT EXISTS idempotency (
    merchant TEXT NOT NULL, shopper TEXT NOT NULL, key TEXT NOT NULL, digest TEXT NOT NULL,
    order_id TEXT NOT NULL, expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (merchant, shopper, key)
);
CREATE TABLE IF NOT EXISTS customer (
    merchant TEXT NOT NULL, shopper TEXT NOT NULL, branch TEXT NOT NULL, since_ms INTEGER NOT NULL,
    PRIMARY KEY (merchant, shopper)
);
CREATE INDEX IF NOT EXISTS customer_by_branch ON customer(merchant, branch, since_ms);
CREATE TABLE IF NOT EXISTS expiry (
    merchant TEXT NOT NULL, order_id TEXT NOT NULL, due_ms INTEGER NOT NULL,
    PRIMARY KEY (merchant, order_id)
);
CREATE INDEX IF NOT EXISTS expiry_by_due ON expiry(due_ms);
CREATE TABLE IF NOT EXISTS fulfillment_queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, merchant TEXT NOT NULL, branch TEXT NOT NULL,
    order_id TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0,
    UNIQUE (merchant, order_id)
);
CREATE INDEX IF NOT EXISTS queue_pending ON fulfillment_queue(merchant, branch, done, seq);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, merchant TEXT NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_by_merchant ON outbox(merchant, seq);
CREATE TABLE IF NOT EXISTS card (
    merchant TEXT NOT NULL, show TEXT NOT NULL, id TEXT NOT NULL, sku TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (show, id)
);
CREATE INDEX IF NOT EXISTS card_by_sku ON card(merchant, sku);
CREATE TABLE IF NOT EXISTS user (
    merchant TEXT NOT NULL, username TEXT NOT NULL, role TEXT NOT NULL, branch TEXT,
    password_hash TEXT NOT NULL,
    PRIMARY KEY (merchant, username)
);
CREATE INDEX IF NOT EXISTS user_by_name ON user(username);
CREATE TABLE IF NOT EXISTS shopper (
    merchant TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL,
    PRIMARY KEY (merchant, id)
);
CREATE TABLE IF NOT EXISTS session (
    token_sha256 BLOB PRIMARY KEY, actor TEXT NOT NULL, expires_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS session_by_expiry ON session(expires_at_ms);
"""


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(slots=True)
class _Job:
    """Work for the write loop: a plan to apply, or a function to run alone."""

    future: asyncio.Future[Any]
    merchant: MerchantId | None = None
    plan: Plan | None = None
    fn: Callable[[sqlite3.Connection], Any] | None = None
    on_done: Callable[[Any], None] | None = None  # on the loop, in commit order


def _settle(job: _Job, result: Any, error: BaseException | None) -> None:
    if error is None and job.on_done is not None:
        job.on_done(result)  # even for a cancelled caller: the write happened
    if job.future.cancelled():
        return
    if error is not None:
        job.future.set_exception(error)
    else:
        job.future.set_result(result)


class SqliteStore:
    """Everything in `path` (the `--data-dir`'s lianbo.sqlite3)."""

    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        assert synchronous in ("FULL", "NORMAL")
        self._path = path
        self._synchronous = synchronous
        self._jobs: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._writing: asyncio.Task[None] | None = None
        self._db: sqlite3.Connection | None = None  # the write connection, on _write_thread
        self._write_thread: ThreadPoolExecutor | None = None
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sqlite-read")
        self._local = threading.local()
        self._read_connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._memory = OrderingMemory()
        self._plans = PlanWriter(path, synchronous)

    # -- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        had_pickup_index = _has_table(db, "pickup_wait")
        db.executescript(SCHEMA)
        if not had_pickup_index:  # a data dir from before the index: fill it once
            with db:
                _index_waiting_pickups(db)
        self._db = db
        self._write_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-write")
        self._writing = asyncio.get_running_loop().create_task(self._write_loop())

    async def close(self) -> None:
        if self._writing is not None:
            self._jobs.put_nowait(None)
            await self._writing
            self._writing = None
        await self._plans.stop()
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._write_thread is not None:
            self._write_thread.shutdown(wait=True)
            self._write_thread = None
        self._readers.shutdown(wait=True)
        with self._lock:
            for conn in self._read_connections:
                conn.close()
            self._read_connections.clear()

    @property
    def writer_pid(self) -> int | None:
        """The process applying plans (store/sqlite_writer.py), once started."""
        return self._plans.pid

    @property
    def batches_in_writer(self) -> int:
        """Batches of plans the writer process holds, sent and not yet answered."""
        return self._plans.batches_in_flight

    async def durability(self) -> Durability:
        if self._synchronous == "FULL":
            return Durability(
                True, "SQLite WAL with synchronous=FULL: every answer follows an fsync"
            )
        return Durability(
            True,
            "SQLite WAL with synchronous=NORMAL: survives a crash of the server process; "
            "a power loss can lose the last transactions",
        )

    def _connect(self) -> sqlite3.Connection:
        return connect(self._path, self._synchronous)

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            with self._lock:
                self._read_connections.append(conn)
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: fn(self._reader()))

    async def _write(
        self, fn: Callable[[sqlite3.Connection], T], on_done: Callable[[T], None] | None = None
    ) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put_nowait(_Job(future, fn=fn, on_done=on_done))
        return await future

    async def _write_catalog(
        self, merchant: MerchantId, fn: Callable[[sqlite3.Connection], Any]
    ) -> None:
        """A write to what ordering views read: memory drops that merchant's catalog."""
        await self._write(fn, lambda _: self._memory.forget_catalog(merchant))

    # -- the write loop -----------------------------------------------------------------

    async def _write_loop(self) -> None:
        """Takes jobs in order. Plans waiting together go to the writer process as one
        batch, while at most PLAN_BATCHES_IN_FLIGHT are there (it commits them in order,
        and the next batch grows while they are); a job of its own runs on the write
        thread once every batch before it is answered."""
        in_flight: collections.deque[asyncio.Future[list[Outcome]]] = collections.deque()
        carried: _Job | None = None
        while True:
            job = carried if carried is not None else await self._jobs.get()
            carried = None
            if job is None:
                break
            if job.fn is not None:
                while in_flight:
                    await in_flight.popleft()  # answered by _settle_batch first
                await self._run_alone(job)
                continue
            while len(in_flight) >= PLAN_BATCHES_IN_FLIGHT:
                await in_flight.popleft()
            batch = [job]
            while len(batch) < BATCH_PLANS_MAX and not self._jobs.empty():
                more = self._jobs.get_nowait()
                if more is None or more.fn is not None:
                    carried = more
                    break
                batch.append(more)
            try:
                answered = await self._plans.send([(j.merchant, j.plan) for j in batch])  # type: ignore[misc]
            except Exception as exc:  # the child cannot start: these callers learn why
                logger.exception("cannot start the SQLite writer process")
                for j in batch:
                    _settle(j, None, exc)
                continue
            answered.add_done_callback(partial(self._settle_batch, batch))
            in_flight.append(answered)
        for answered in in_flight:
            await answered

    async def _run_alone(self, job: _Job) -> None:
        assert job.fn is not None
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._write_thread, self._transaction, job.fn)
        except Exception as exc:
            _settle(job, None, exc)
        else:
            _settle(job, result, None)

    def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        db = self._db
        assert db is not None, "store used before open()"
        try:
            db.execute("BEGIN IMMEDIATE")
            result = fn(db)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return result

    def _settle_batch(self, batch: list[_Job], answered: asyncio.Future[list[Outcome]]) -> None:
        """Memory first, then every caller: in commit order, as batches are answered."""
        outcomes = answered.result()
        for job, (result, error) in zip(batch, outcomes, strict=True):
            if isinstance(result, Applied):
                assert job.merchant is not None
                assert job.plan is not None
                self._memory.committed(job.merchant, job.plan, result.stock)
            elif isinstance(error, WriterLost):
                self._memory.forget_all()
        for job, (result, error) in zip(batch, outcomes, strict=True):
            _settle(job, result, error)

    # -- commerce -----------------------------------------------------------------------

    async def apply(self, merchant_id: MerchantId, plan: Plan) -> ApplyResult:
        future: asyncio.Future[ApplyResult] = asyncio.get_running_loop().create_future()
        self._jobs.put_nowait(_Job(future, merchant=merchant_id, plan=plan))
        return await future

    async def ordering_view(
        self, merchant_id: MerchantId, selling: BranchId, shopper: ShopperId, skus: Sequence[SkuId]
    ) -> OrderingView | None:
        memory = self._memory
        while (missing := memory.missing(merchant_id, shopper, skus)) is not None:
            await self._write(
                partial(_load, m=merchant_id, shopper=shopper, missing=missing), memory.loaded
            )
        return memory.view(merchant_id, selling, shopper, skus)

    async def order(self, merchant_id: MerchantId, order_id: OrderId) -> Order | None:
        def read(conn: sqlite3.Connection) -> Order | None:
            row = conn.execute(
                "SELECT body FROM orders WHERE merchant = ? AND id = ?", (merchant_id, order_id)
            ).fetchone()
            return None if row is None else codec.order_from_dict(orjson.loads(row[0]))

        return await self._read(read)

    async def awaiting_pickup(
        self, merchant_id: MerchantId, branch: BranchId, code: str
    ) -> list[Order]:
        def read(conn: sqlite3.Connection) -> list[Order]:
            rows = conn.execute(
                "SELECT o.body FROM pickup_wait p JOIN orders o"
                " ON o.merchant = p.merchant AND o.id = p.order_id"
                " WHERE p.merchant = ? AND p.branch = ? AND p.code = ?",
                (merchant_id, branch, code),
            )
            return [codec.order_from_dict(orjson.loads(body)) for (body,) in rows]

        return await self._read(read)

    async def orders(
        self,
        merchant_id: MerchantId,
        *,
        branch: BranchId | None = None,
        shopper: ShopperId | None = None,
        limit: int = 100,
    ) -> list[Order]:
        def read(conn: sqlite3.Connection) -> list[Order]:
            where, args = "merchant = ?", [str(merchant_id)]
            if branch is not None:
                where += " AND (branch = ? OR ship_from = ?)"
                args += [branch, branch]
            if shopper is not None:
                where += " AND shopper = ?"
                args.append(shopper)
            rows = conn.execute(
                f"SELECT body FROM orders WHERE {where} ORDER BY placed_at_ms DESC, id LIMIT ?",
                (*args, limit),
            ).fetchall()
            return [codec.order_from_dict(orjson.loads(r[0])) for r in rows]

        return await self._read(read)

    async def stock(self, merchant_id: MerchantId) -> dict[tuple[BranchId, SkuId], StockLevel]:
        def read(conn: sqlite3.Connection) -> dict[tuple[BranchId, SkuId], StockLevel]:
            rows = conn.execute(
                "SELECT branch, sku, received, available, reserved, sold FROM stock"
                " WHERE merchant = ?",
                (merchant_id,),
            ).fetchall()
            return {
                (BranchId(b), SkuId(s)): StockLevel(received=rc, available=av, reserved=rs, sold=sd)
                for b, s, rc, av, rs, sd in rows
            }

        return await self._read(read)

    async def stored_value(self, merchant_id: MerchantId, shopper: ShopperId) -> StoredValue:
        def read(conn: sqlite3.Connection) -> StoredValue:
            balance, held = spendable_parts(conn, merchant_id, shopper)
            return StoredValue(Amount(balance), Amount(held))

        return await self._read(read)

    async def transfers(
        self, merchant_id: MerchantId, from_ms: int = 0, to_ms: int = 2**62
    ) -> list[Transfer]:
        def read(conn: sqlite3.Connection) -> list[Transfer]:
            rows = conn.execute(
                "SELECT body FROM transfer WHERE merchant = ? AND at_ms >= ? AND at_ms < ?"
                " ORDER BY rowid",
                (merchant_id, from_ms, to_ms),
            ).fetchall()
            return [codec.transfer_from_dict(orjson.loads(r[0])) for r in rows]

        return await self._read(read)

    async def account_balances(self, merchant_id: MerchantId) -> dict[str, int]:
        def read(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute(
                "SELECT id, balance FROM account WHERE merchant = ?", (merchant_id,)
            ).fetchall()
            return {r[0]: r[1] for r in rows}

        return await self._read(read)

    async def customers(self, merchant_id: MerchantId, branch: BranchId) -> list[Customer]:
        def read(conn: sqlite3.Connection) -> list[Customer]:
            rows = conn.execute(
                "SELECT shopper, since_ms FROM customer WHERE merchant = ? AND branch = ?"
                " ORDER BY since_ms, shopper",
                (merchant_id, branch),
            ).fetchall()
            return [Customer(ShopperId(s), branch, t) for s, t in rows]

        return await self._read(read)

    async def due_expiries(self, now_ms: int, limit: int) -> list[tuple[MerchantId, OrderId]]:
        def read(conn: sqlite3.Connection) -> list[tuple[MerchantId, OrderId]]:
            rows = conn.execute(
                "SELECT merchant, order_id FROM expiry WHERE due_ms <= ? ORDER BY due_ms LIMIT ?",
                (now_ms, limit),
            ).fetchall()
            return [(MerchantId(m), OrderId(o)) for m, o in rows]

        return await self._read(read)

    async def queue(
        self, merchant_id: MerchantId, branch: BranchId, limit: int = 100
    ) -> list[QueueEntry]:
        def read(conn: sqlite3.Connection) -> list[QueueEntry]:
            rows = conn.execute(
                "SELECT seq, order_id FROM fulfillment_queue"
                " WHERE merchant = ? AND branch = ? AND done = 0 ORDER BY seq LIMIT ?",
                (merchant_id, branch, limit),
            ).fetchall()
            return [QueueEntry(str(seq), OrderId(o)) for seq, o in rows]

        return await self._read(read)

    async def outbox(
        self, merchant_id: MerchantId, after_seq: int, limit: int = 100
    ) -> list[OutboxEntry]:
        def read(conn: sqlite3.Connection) -> list[OutboxEntry]:
            rows = conn.execute(
                "SELECT seq, body FROM outbox WHERE merchant = ? AND seq > ? ORDER BY seq LIMIT ?",
                (merchant_id, after_seq, limit),
            ).fetchall()
            return [OutboxEntry(seq, codec.event_from_dict(orjson.loads(b))) for seq, b in rows]

        return await self._read(read)

    # -- cards --------------------------------------------------------------------------

    async def put_card(self, merchant_id: MerchantId, card: Card) -> None:
        body = codec.dumps(codec.card_to_dict(card))
        await self._write(
            lambda conn: conn.execute(
                "INSERT INTO card (merchant, show, id, sku, body) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT DO UPDATE SET body = excluded.body",
                (merchant_id, card.show, card.id, card.sku, body),
            )
        )

    async def remove_card(self, merchant_id: MerchantId, show: ShowId, card: CardId) -> None:
        await self._write(
            lambda conn: conn.execute(
                "DELETE FROM card WHERE merchant = ? AND show = ? AND id = ?",
                (merchant_id, show, card),
            )
        )

    async def cards(self, show: ShowId) -> list[Card]:
        def read(conn: sqlite3.Connection) -> list[Card]:
            rows = conn.execute("SELECT body FROM card WHERE show = ? ORDER BY rowid", (show,))
            return [codec.card_from_dict(orjson.loads(r[0])) for r in rows]

        return await self._read(read)

    async def shows_pinning(self, merchant_id: MerchantId, sku: SkuId) -> list[ShowId]:
        def read(conn: sqlite3.Connection) -> list[ShowId]:
            rows = conn.execute(
                "SELECT DISTINCT show FROM card WHERE merchant = ? AND sku = ?", (merchant_id, sku)
            )
            return [ShowId(r[0]) for r in rows]

        return await self._read(read)

    # -- identities ---------------------------------------------------------------------

    async def create_user(self, user: User) -> bool:
        def insert(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "INSERT INTO user (merchant, username, role, branch, password_hash)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (user.merchant, user.username, user.role, user.branch, user.password_hash),
            )
            return cursor.rowcount == 1

        return await self._write(insert)

    async def user(self, merchant_id: MerchantId, username: str) -> User | None:
        def read(conn: sqlite3.Connection) -> User | None:
            row = conn.execute(
                "SELECT role, branch, password_hash FROM user WHERE merchant = ? AND username = ?",
                (merchant_id, username),
            ).fetchone()
            if row is None:
                return None
            branch = None if row[1] is None else BranchId(row[1])
            return User(
                merchant=merchant_id,
                username=username,
                role=Role(row[0]),
                branch=branch,
                password_hash=row[2],
            )

        return await self._read(read)

    async def users_named(self, username: str, limit: int = 10) -> list[User]:
        """Every merchant's user of that name: staff sign in by email alone."""

        def read(conn: sqlite3.Connection) -> list[User]:
            rows = conn.execute(
                "SELECT merchant, role, branch, password_hash FROM user WHERE username = ?"
                " ORDER BY merchant LIMIT ?",
                (username, limit),
            ).fetchall()
            return [
                User(
                    merchant=MerchantId(r[0]),
                    username=username,
                    role=Role(r[1]),
                    branch=None if r[2] is None else BranchId(r[2]),
                    password_hash=r[3],
                )
                for r in rows
            ]

        return await self._read(read)

    async def create_shopper(self, merchant_id: MerchantId, shopper: ShopperId, name: str) -> None:
        await self._write(
            lambda conn: conn.execute(
                "INSERT INTO shopper (merchant, id, name) VALUES (?, ?, ?)",
                (merchant_id, shopper, name),
            )
        )

    async def shopper_name(self, merchant_id: MerchantId, shopper: ShopperId) -> str | None:
        def read(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT name FROM shopper WHERE merchant = ? AND id = ?", (merchant_id, shopper)
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._read(read)

    async def create_session(self, token_sha256: bytes, session: Session) -> None:
        body = codec.dumps(codec.actor_to_dict(session.actor))
        await self._write(
            lambda conn: conn.execute(
                "INSERT INTO session (token_sha256, actor, expires_at_ms) VALUES (?, ?, ?)",
                (token_sha256, body, session.expires_at_ms),
            )
        )

    async def session(self, token_sha256: bytes) -> Session | None:
        def read(conn: sqlite3.Connection) -> Session | None:
            row = conn.execute(
                "SELECT actor, expires_at_ms FROM session WHERE token_sha256 = ?", (token_sha256,)
            ).fetchone()
            if row is None:
                return None
            return Session(codec.actor_from_dict(orjson.loads(row[0])), int(row[1]))

        return await self._read(read)

    async def forget_expired_sessions(self, now_ms: int, limit: int) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "DELETE FROM session WHERE token_sha256 IN"
                " (SELECT token_sha256 FROM session WHERE expires_at_ms <= ? LIMIT ?)",
                (now_ms, limit),
            ).rowcount

        return await self._write(delete)

    async def delete_session(self, token_sha256: bytes) -> None:
        await self._write(
            lambda conn: conn.execute("DELETE FROM session WHERE token_sha256 = ?", (token_sha256,))
        )

    # -- catalog ------------------------------------------------------------------------

    async def put_product(self, product: Product) -> None:
        await self._write(
            lambda conn: conn.execute(
                "INSERT INTO product (id, merchant, name) VALUES (?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET name = excluded.name",
                (product.id, product.merchant, product.name),
            )
        )

    async def put_sku(self, sku: Sku) -> None:
        await self._write_catalog(
            sku.merchant,
            lambda conn: conn.execute(
                "INSERT INTO sku (id, merchant, product, name, price) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET name = excluded.name, price = excluded.price",
                (sku.id, sku.merchant, sku.product, sku.name, sku.price),
            ),
        )

    async def skus(self, merchant_id: MerchantId) -> list[Sku]:
        def read(conn: sqlite3.Connection) -> list[Sku]:
            rows = conn.execute(
                "SELECT id, merchant, product, name, price FROM sku"
                " WHERE merchant = ? ORDER BY rowid",
                (merchant_id,),
            ).fetchall()
            return [_sku(r) for r in rows]

        return await self._read(read)

    async def put_offer(self, merchant_id: MerchantId, offer: Offer) -> None:
        body = codec.dumps(codec.offer_to_dict(offer))
        await self._write_catalog(
            merchant_id,
            lambda conn: conn.execute(
                "INSERT INTO offer (merchant, sku, body) VALUES (?, ?, ?)"
                " ON CONFLICT (merchant, sku) DO UPDATE SET body = excluded.body",
                (merchant_id, offer.sku, body),
            ),
        )

    async def remove_offer(self, merchant_id: MerchantId, sku: SkuId) -> None:
        await self._write_catalog(
            merchant_id,
            lambda conn: conn.execute(
                "DELETE FROM offer WHERE merchant = ? AND sku = ?", (merchant_id, sku)
            ),
        )

    async def offers(self, merchant_id: MerchantId) -> dict[SkuId, Offer]:
        def read(conn: sqlite3.Connection) -> dict[SkuId, Offer]:
            rows = conn.execute("SELECT body FROM offer WHERE merchant = ?", (merchant_id,))
            offers = [codec.offer_from_dict(orjson.loads(r[0])) for r in rows]
            return {o.sku: o for o in offers}

        return await self._read(read)

    # -- directory ----------------------------------------------------------------------

    async def create_merchant(self, merchant: Merchant, operator_token: str) -> None:
        await self._write(
            lambda conn: conn.execute(
                "INSERT INTO merchant (id, name, operator_token_sha256) VALUES (?, ?, ?)",
                (merchant.id, merchant.name, token_digest(operator_token)),
            )
        )

    async def merchant(self, merchant_id: MerchantId) -> Merchant | None:
        def read(conn: sqlite3.Connection) -> Merchant | None:
            row = conn.execute(
                "SELECT id, name FROM merchant WHERE id = ?", (merchant_id,)
            ).fetchone()
            return None if row is None else Merchant(MerchantId(row[0]), row[1])

        return await self._read(read)

    async def is_operator_token(self, merchant_id: MerchantId, token: str) -> bool:
        return await self._token_matches("merchant", "operator_token_sha256", merchant_id, token)

    async def set_terms(self, merchant_id: MerchantId, terms: Terms) -> None:
        body = codec.dumps(codec.terms_to_dict(terms))
        await self._write_catalog(
            merchant_id,
            lambda conn: conn.execute(
                "UPDATE merchant SET terms = ? WHERE id = ?", (body, merchant_id)
            ),
        )

    async def terms(self, merchant_id: MerchantId) -> Terms:
        return await self._read(lambda conn: _terms(conn, merchant_id))

    async def create_branch(self, branch: Branch) -> None:
        await self._write_catalog(
            branch.merchant,
            lambda conn: conn.execute(
                "INSERT INTO branch (id, merchant, name, address, lat, lng, is_open, created_seq)"
                " VALUES (?, ?, ?, ?, ?, ?, ?,"
                " (SELECT COALESCE(MAX(created_seq), 0) + 1 FROM branch))",
                (
                    branch.id,
                    branch.merchant,
                    branch.name,
                    branch.address,
                    branch.lat,
                    branch.lng,
                    int(branch.is_open),
                ),
            ),
        )

    async def update_branch(self, branch: Branch) -> None:
        await self._write_catalog(
            branch.merchant,
            lambda conn: conn.execute(
                "UPDATE branch SET name = ?, address = ?, lat = ?, lng = ?, is_open = ?"
                " WHERE id = ? AND merchant = ?",
                (
                    branch.name,
                    branch.address,
                    branch.lat,
                    branch.lng,
                    int(branch.is_open),
                    branch.id,
                    branch.merchant,
                ),
            ),
        )

    async def branch(self, branch_id: BranchId) -> Branch | None:
        def read(conn: sqlite3.Connection) -> Branch | None:
            row = conn.execute(
                "SELECT id, merchant, name, address, lat, lng, is_open FROM branch WHERE id = ?",
                (branch_id,),
            ).fetchone()
            return None if row is None else _branch(row)

        return await self._read(read)

    async def branches(self, merchant_id: MerchantId) -> list[Branch]:
        return await self._read(lambda conn: _branches(conn, merchant_id))

    async def create_show(self, show: Show, host_token: str) -> None:
        await self._write(
            lambda conn: conn.execute(
                "INSERT INTO show (id, merchant, title, status, host_token_sha256)"
                " VALUES (?, ?, ?, ?, ?)",
                (show.id, show.merchant, show.title, show.status, token_digest(host_token)),
            )
        )

    async def show(self, show_id: ShowId) -> Show | None:
        def read(conn: sqlite3.Connection) -> Show | None:
            row = conn.execute(
                "SELECT id, merchant, title, status FROM show WHERE id = ?", (show_id,)
            ).fetchone()
            if row is None:
                return None
            return Show(
                id=ShowId(row[0]),
                merchant=MerchantId(row[1]),
                title=row[2],
                status=ShowStatus(row[3]),
            )

        return await self._read(read)

    async def shows(self, merchant_id: MerchantId) -> list[Show]:
        def read(conn: sqlite3.Connection) -> list[Show]:
            rows = conn.execute(
                "SELECT id, title, status FROM show WHERE merchant = ? ORDER BY rowid DESC",
                (merchant_id,),
            ).fetchall()
            return [
                Show(id=ShowId(i), merchant=merchant_id, title=t, status=ShowStatus(s))
                for i, t, s in rows
            ]

        return await self._read(read)

    async def set_show_status(self, show_id: ShowId, status: ShowStatus) -> None:
        await self._write(
            lambda conn: conn.execute("UPDATE show SET status = ? WHERE id = ?", (status, show_id))
        )

    async def pause_live_shows(self) -> int:
        def update(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "UPDATE show SET status = ? WHERE status = ?",
                (ShowStatus.PAUSED, ShowStatus.LIVE),
            )
            return cursor.rowcount

        return await self._write(update)

    async def is_host_token(self, show_id: ShowId, token: str) -> bool:
        return await self._token_matches("show", "host_token_sha256", show_id, token)

    async def _token_matches(self, table: str, column: str, row_id: str, token: str) -> bool:
        # `table` and `column` come from this module only, never from a request.
        query = f"SELECT {column} FROM {table} WHERE id = ?"

        def read(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute(query, (row_id,)).fetchone()
            return None if row is None else bytes(row[0])

        stored = await self._read(read)
        return stored is not None and hmac.compare_digest(stored, token_digest(token))


def _load(conn: sqlite3.Connection, m: MerchantId, shopper: ShopperId, missing: Missing) -> Loaded:
    """On the write thread, between batches: what `OrderingMemory` lacks for a view."""
    catalog = None
    if missing.catalog:
        skus = conn.execute(
            "SELECT id, merchant, product, name, price FROM sku WHERE merchant = ?", (m,)
        ).fetchall()
        offers = [
            codec.offer_from_dict(orjson.loads(body))
            for (body,) in conn.execute("SELECT body FROM offer WHERE merchant = ?", (m,))
        ]
        catalog = Catalog(
            terms=_terms(conn, m),
            branches=tuple(_branches(conn, m)),
            skus={SkuId(row[0]): _sku(row) for row in skus},
            offers={o.sku: o for o in offers},
        )
    levels: dict[SkuId, dict[BranchId, int]] = {}
    for sku in missing.levels:
        rows = conn.execute(
            "SELECT branch, available FROM stock WHERE merchant = ? AND sku = ?", (m, sku)
        )
        levels[sku] = {BranchId(branch): available for branch, available in rows}
    bought: dict[SkuId, int] = {}
    for sku in missing.bought:
        row = conn.execute(
            "SELECT qty FROM bought WHERE merchant = ? AND shopper = ? AND sku = ?",
            (m, shopper, sku),
        ).fetchone()
        bought[sku] = row[0] if row else 0
    return Loaded(m, shopper, catalog, levels, bought)


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return row.fetchone() is not None


def _index_waiting_pickups(conn: sqlite3.Connection) -> None:
    rows = conn.execute("SELECT merchant, body FROM orders").fetchall()
    for merchant, body in rows:
        order = codec.order_from_dict(orjson.loads(body))
        if awaits_pickup(order):
            conn.execute(
                "INSERT OR IGNORE INTO pickup_wait (merchant, order_id, branch, code)"
                " VALUES (?, ?, ?, ?)",
                (merchant, order.id, order.ship_from, order.pickup_code),
            )


def _terms(conn: sqlite3.Connection, merchant_id: MerchantId) -> Terms:
    row = conn.execute("SELECT terms FROM merchant WHERE id = ?", (merchant_id,)).fetchone()
    if row is None or row[0] is None:
        return Terms()
    return codec.terms_from_dict(orjson.loads(row[0]))


def _branches(conn: sqlite3.Connection, merchant_id: MerchantId) -> list[Branch]:
    rows = conn.execute(
        "SELECT id, merchant, name, address, lat, lng, is_open FROM branch"
        " WHERE merchant = ? ORDER BY created_seq",
        (merchant_id,),
    ).fetchall()
    return [_branch(row) for row in rows]


def _branch(row: tuple[str, str, str, str, float | None, float | None, int]) -> Branch:
    return Branch(
        id=BranchId(row[0]),
        merchant=MerchantId(row[1]),
        name=row[2],
        address=row[3],
        lat=row[4],
        lng=row[5],
        is_open=bool(row[6]),
    )


def _sku(row: tuple[str, str, str, str, int]) -> Sku:
    return Sku(
        id=SkuId(row[0]),
        merchant=MerchantId(row[1]),
        product=ProductId(row[2]),
        name=row[3],
        price=Amount(row[4]),
    )
