"""Applying plans to the SQLite file: the SQL for every guard and write of commerce/plan.py.

Runs wherever the store's one writer runs (store/sqlite_writer.py): nothing here knows
about threads, processes or the event loop. A batch of plans shares one transaction (one
commit, one fsync); guards are checked before a plan writes, so a refused plan writes
nothing, and only a plan that breaks an invariant half-way has the batch redone with a
SAVEPOINT per plan.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Sequence
from typing import Final, assert_never

from commerce.ids import MerchantId, OrderId, ShopperId
from commerce.ledger import stored_value
from commerce.orders import awaits_pickup
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
    Write,
)
from streamserver.store import codec
from streamserver.store.port import Applied, ApplyResult, Replayed, StockChange

logger = logging.getLogger(__name__)

# What a plan came to: its result, or why it could not be applied (nothing written).
Outcome = tuple[ApplyResult | None, BaseException | None]


def apply_batch(db: sqlite3.Connection, plans: Sequence[tuple[MerchantId, Plan]]) -> list[Outcome]:
    """Apply `plans` in order in one transaction; one outcome per plan, once committed."""
    try:
        db.execute("BEGIN IMMEDIATE")
        now_ms = time.time_ns() // 1_000_000
        outcomes: list[Outcome]
        try:
            outcomes = [(apply_plan(db, m, plan, now_ms), None) for m, plan in plans]
        except Exception:
            db.execute("ROLLBACK")
            db.execute("BEGIN IMMEDIATE")
            outcomes = _one_by_one(db, plans, now_ms)
        db.execute("COMMIT")
    except BaseException as exc:
        if db.in_transaction:
            db.execute("ROLLBACK")
        return [(None, exc) for _ in plans]
    return outcomes


def _one_by_one(
    db: sqlite3.Connection, plans: Sequence[tuple[MerchantId, Plan]], now_ms: int
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for m, plan in plans:
        db.execute("SAVEPOINT plan")
        try:
            result = apply_plan(db, m, plan, now_ms)
        except Exception as exc:  # a broken invariant: this plan only
            db.execute("ROLLBACK TO plan")
            logger.exception("plan failed to apply")
            outcomes.append((None, exc))
        else:
            outcomes.append((result, None))
        db.execute("RELEASE plan")
    return outcomes


_STOCK_COLUMNS: Final = {
    StockMove.RESERVE: "available = available - :n, reserved = reserved + :n",
    StockMove.RELEASE: "reserved = reserved - :n, available = available + :n",
    StockMove.SELL: "reserved = reserved - :n, sold = sold + :n",
    StockMove.RETURN: "sold = sold - :n, available = available + :n",
}


def apply_plan(
    db: sqlite3.Connection, merchant: MerchantId, plan: Plan, now_ms: int
) -> ApplyResult:
    for guard in plan.guards:
        verdict = _check(db, merchant, guard, now_ms)
        if verdict is not None:
            return verdict
    changes: list[StockChange] = []
    for write in plan.writes:
        change = _write_one(db, merchant, write)
        if change is not None:
            changes.append(change)
    return Applied(tuple(changes))


def _check(
    db: sqlite3.Connection, m: MerchantId, guard: Guard, now_ms: int
) -> Refusal | Replayed | None:
    match guard:
        case KeyUnseen(shopper, key, digest):
            row = db.execute(
                "SELECT digest, order_id FROM idempotency"
                " WHERE merchant = ? AND shopper = ? AND key = ? AND expires_at_ms > ?",
                (m, shopper, key, now_ms),
            ).fetchone()
            if row is None:
                return None
            if row[0] == digest:
                return Replayed(OrderId(row[1]))
            return Refusal(Reason.KEY_REUSED, field="key")
        case StockAtLeast(branch, sku, qty):
            row = db.execute(
                "SELECT available FROM stock WHERE merchant = ? AND branch = ? AND sku = ?",
                (m, branch, sku),
            ).fetchone()
            return None if (row[0] if row else 0) >= qty else Refusal(Reason.SOLD_OUT)
        case BalanceAtLeast(shopper, amount):
            balance, held = spendable_parts(db, m, shopper)
            return None if balance - held >= amount else Refusal(Reason.INSUFFICIENT_BALANCE)
        case BoughtAtMost(shopper, sku, qty):
            row = db.execute(
                "SELECT qty FROM bought WHERE merchant = ? AND shopper = ? AND sku = ?",
                (m, shopper, sku),
            ).fetchone()
            return None if (row[0] if row else 0) <= qty else Refusal(Reason.OVER_LIMIT)
        case OrderInState(order, state):
            row = db.execute(
                "SELECT state FROM orders WHERE merchant = ? AND id = ?", (m, order)
            ).fetchone()
            ok = row is not None and row[0] == state
            return None if ok else Refusal(Reason.NOT_ALLOWED_IN_STATE)
        case BeforeTime(deadline_ms, reason):
            return None if now_ms < deadline_ms else Refusal(reason)
        case NotBeforeTime(due_ms, reason):
            return None if now_ms >= due_ms else Refusal(reason)
        case _:
            assert_never(guard)


def _write_one(db: sqlite3.Connection, m: MerchantId, write: Write) -> StockChange | None:
    match write:
        case MoveStock(branch, sku, qty, StockMove.RECEIVE):  # the one move that adds a row
            row = db.execute(
                "INSERT INTO stock (merchant, branch, sku, received, available)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET"
                " received = received + excluded.received,"
                " available = available + excluded.available RETURNING available",
                (m, branch, sku, qty, qty),
            ).fetchone()
            return StockChange(branch, sku, row[0])
        case MoveStock(branch, sku, qty, move):
            row = db.execute(
                f"UPDATE stock SET {_STOCK_COLUMNS[move]}"
                " WHERE merchant = :m AND branch = :b AND sku = :s RETURNING available",
                {"n": qty, "m": m, "b": branch, "s": sku},
            ).fetchone()
            if row is None:
                raise sqlite3.IntegrityError(f"no stock of {sku} in {branch} to {move}")
            return StockChange(branch, sku, row[0])
        case HoldStoredValue(shopper, order, amount):
            db.execute(
                "INSERT INTO hold (merchant, order_id, shopper, amount) VALUES (?, ?, ?, ?)",
                (m, order, shopper, amount),
            )
            _add_held(db, m, shopper, amount)
        case ReleaseHold(shopper, order, amount):
            deleted = db.execute(
                "DELETE FROM hold WHERE merchant = ? AND order_id = ? RETURNING amount", (m, order)
            ).fetchone()
            assert deleted is not None, "a hold is released once"
            assert deleted[0] == amount
            _add_held(db, m, shopper, -amount)
        case PostTransfer(transfer):
            db.execute(
                "INSERT INTO transfer (merchant, id, body, at_ms) VALUES (?, ?, ?, ?)",
                (m, transfer.id, codec.dumps(codec.transfer_to_dict(transfer)), transfer.at_ms),
            )
            _add_balance(db, m, transfer.credit, transfer.amount)
            _add_balance(db, m, transfer.debit, -transfer.amount)
            if transfer.debit.startswith("sv:"):
                balance, held = spendable_parts(db, m, ShopperId(transfer.debit[3:]))
                assert balance >= held, "stored value never goes below what it holds"
        case CountBought(shopper, sku, qty):
            db.execute(
                "INSERT INTO bought (merchant, shopper, sku, qty) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO UPDATE SET qty = qty + excluded.qty",
                (m, shopper, sku, qty),
            )
        case PutOrder(order):
            db.execute(
                "INSERT INTO orders (merchant, id, branch, ship_from, shopper, state, placed_at_ms,"
                " body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO UPDATE SET state = excluded.state, body = excluded.body",
                (
                    m,
                    order.id,
                    order.branch,
                    order.ship_from,
                    order.shopper,
                    order.state,
                    order.placed_at_ms,
                    codec.dumps(codec.order_to_dict(order)),
                ),
            )
            if awaits_pickup(order):
                db.execute(
                    "INSERT OR IGNORE INTO pickup_wait (merchant, order_id, branch, code)"
                    " VALUES (?, ?, ?, ?)",
                    (m, order.id, order.ship_from, order.pickup_code),
                )
            elif order.pickup_code is not None:
                db.execute(
                    "DELETE FROM pickup_wait WHERE merchant = ? AND order_id = ?", (m, order.id)
                )
        case RememberKey(shopper, key, digest, order, expires_at_ms):
            db.execute(
                "INSERT OR REPLACE INTO idempotency"
                " (merchant, shopper, key, digest, order_id, expires_at_ms)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (m, shopper, key, digest, order, expires_at_ms),
            )
        case AttributeCustomer(shopper, branch, at_ms):
            db.execute(
                "INSERT INTO customer (merchant, shopper, branch, since_ms) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (m, shopper, branch, at_ms),
            )
        case ScheduleExpiry(order, due_ms):
            db.execute(
                "INSERT OR REPLACE INTO expiry (merchant, order_id, due_ms) VALUES (?, ?, ?)",
                (m, order, due_ms),
            )
        case CancelExpiry(order):
            db.execute("DELETE FROM expiry WHERE merchant = ? AND order_id = ?", (m, order))
        case EnqueueFulfillment(branch, order):
            db.execute(
                "INSERT INTO fulfillment_queue (merchant, branch, order_id) VALUES (?, ?, ?)",
                (m, branch, order),
            )
        case AckFulfillment(branch, order):
            db.execute(
                "UPDATE fulfillment_queue SET done = 1 WHERE merchant = ? AND order_id = ?"
                " AND branch = ?",
                (m, order, branch),
            )
        case AppendOutbox(event):
            db.execute(
                "INSERT INTO outbox (merchant, body) VALUES (?, ?)",
                (m, codec.dumps(codec.event_to_dict(event))),
            )
        case _:
            assert_never(write)
    return None


def _add_balance(db: sqlite3.Connection, m: MerchantId, account: str, amount: int) -> None:
    db.execute(
        "INSERT INTO account (merchant, id, balance) VALUES (?, ?, ?)"
        " ON CONFLICT DO UPDATE SET balance = balance + excluded.balance",
        (m, account, amount),
    )


def _add_held(db: sqlite3.Connection, m: MerchantId, shopper: ShopperId, amount: int) -> None:
    if amount < 0:  # an upsert would check the negative row before the conflict
        db.execute(
            "UPDATE held SET amount = amount + ? WHERE merchant = ? AND shopper = ?",
            (amount, m, shopper),
        )
        return
    db.execute(
        "INSERT INTO held (merchant, shopper, amount) VALUES (?, ?, ?)"
        " ON CONFLICT DO UPDATE SET amount = amount + excluded.amount",
        (m, shopper, amount),
    )


def spendable_parts(db: sqlite3.Connection, m: MerchantId, shopper: ShopperId) -> tuple[int, int]:
    balance = db.execute(
        "SELECT balance FROM account WHERE merchant = ? AND id = ?", (m, stored_value(shopper))
    ).fetchone()
    held = db.execute(
        "SELECT amount FROM held WHERE merchant = ? AND shopper = ?", (m, shopper)
    ).fetchone()
    return (balance[0] if balance else 0), (held[0] if held else 0)
