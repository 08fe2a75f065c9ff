"""The closed set of guards and writes a plan may hold: the store contract.

A core operation never touches storage; it returns a `Plan`: the guards that must
hold at the instant of applying (every rule that races: stock, balance, per-shopper
limit, idempotency key, order state, flash deadline) and the writes to make if they
do. A store applies a plan whole or not at all (one SQLite transaction, one Lua
script) and implements every kind below; a new kind breaks mypy's exhaustiveness
checks in each adapter until it is handled there. The kinds are final, so an adapter
may also tell them apart by exact type.

Guards are checked in the order given; the first that fails decides the refusal, so
operations list them in the precedence of their `Reason`s (TigerBeetle's result
codes work the same way).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, final

from commerce.ids import Amount, BranchId, OrderId, ShopperId, SkuId
from commerce.values import value

if TYPE_CHECKING:
    from commerce.events import Event
    from commerce.ledger import Transfer
    from commerce.orders import Order, OrderState


class Reason(StrEnum):
    """Why an operation was refused; the values are the wire error codes."""

    KEY_REUSED = "key_reused"  # same idempotency key, another body
    UNKNOWN_SKU = "unknown_sku"
    BRANCH_CLOSED = "branch_closed"
    FLASH_ENDED = "flash_ended"
    OVER_LIMIT = "over_limit"
    SOLD_OUT = "sold_out"
    NO_BRANCH_CAN_SHIP = "no_branch_can_ship"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    STORED_VALUE_OVER_TOTAL = "stored_value_over_total"
    NOT_ALLOWED_IN_STATE = "not_allowed_in_state"
    WRONG_PICKUP_CODE = "wrong_pickup_code"
    NOT_EXPIRED = "not_expired"
    FORBIDDEN = "forbidden"


@value
class Refusal:
    reason: Reason
    field: str | None = None  # the request field to blame, if any
    detail: str = ""


# -- guards: predicates checked inside the atomic apply -------------------------------


@final
@value
class KeyUnseen:
    """Idempotency: the key (scoped to merchant and shopper) has no order yet.

    If it has one with the same body digest, the store answers with that order
    instead of applying; with another digest it refuses KEY_REUSED.
    """

    shopper: ShopperId
    key: str
    body_digest: str


@final
@value
class StockAtLeast:
    branch: BranchId
    sku: SkuId
    qty: int


@final
@value
class BalanceAtLeast:
    """The shopper's stored value, less what is held for open orders, covers `amount`."""

    shopper: ShopperId
    amount: Amount


@final
@value
class BoughtAtMost:
    """The shopper has bought at most `qty` of the SKU so far (per-shopper limit)."""

    shopper: ShopperId
    sku: SkuId
    qty: int


@final
@value
class OrderInState:
    """Optimistic concurrency: the order is still in the state the plan was made from."""

    order: OrderId
    state: OrderState


@final
@value
class BeforeTime:
    """The store's clock is before `deadline_ms` (on Redis, the script's TIME)."""

    deadline_ms: int
    reason: Reason


@final
@value
class NotBeforeTime:
    """The store's clock has reached `due_ms` (expiry must not run early)."""

    due_ms: int
    reason: Reason


Guard = (
    KeyUnseen
    | StockAtLeast
    | BalanceAtLeast
    | BoughtAtMost
    | OrderInState
    | BeforeTime
    | NotBeforeTime
)


# -- writes ---------------------------------------------------------------------------


class StockMove(StrEnum):
    """How a quantity moves between a branch's stock columns (received = the sum)."""

    RECEIVE = "receive"  # +received, +available
    RESERVE = "reserve"  # available -> reserved
    RELEASE = "release"  # reserved -> available
    SELL = "sell"  # reserved -> sold
    RETURN = "return"  # sold -> available (a refunded item back on the shelf)


@final
@value
class MoveStock:
    branch: BranchId
    sku: SkuId
    qty: int
    move: StockMove


@final
@value
class HoldStoredValue:
    """Two-phase, pending: `amount` of the shopper's stored value promised to an order."""

    shopper: ShopperId
    order: OrderId
    amount: Amount


@final
@value
class ReleaseHold:
    """Ends the order's hold (voided, or posted by a transfer in the same plan)."""

    shopper: ShopperId
    order: OrderId
    amount: Amount


@final
@value
class PostTransfer:
    transfer: Transfer


@final
@value
class CountBought:
    """Adds `qty` (negative on cancel or refund) to what the shopper bought of a SKU."""

    shopper: ShopperId
    sku: SkuId
    qty: int


@final
@value
class PutOrder:
    """Inserts or replaces the order record (its state change is guarded by OrderInState)."""

    order: Order


@final
@value
class RememberKey:
    shopper: ShopperId
    key: str
    body_digest: str
    order: OrderId
    expires_at_ms: int  # kept at least 24 h (DESIGN.md)


@final
@value
class AttributeCustomer:
    """First touch: the shopper becomes a customer of this branch unless already one's."""

    shopper: ShopperId
    branch: BranchId
    at_ms: int


@final
@value
class ScheduleExpiry:
    order: OrderId
    due_ms: int


@final
@value
class CancelExpiry:
    order: OrderId


@final
@value
class EnqueueFulfillment:
    """The order enters its fulfilling branch's queue (exactly once, in acceptance order)."""

    branch: BranchId
    order: OrderId


@final
@value
class AckFulfillment:
    """The branch acted on the order: its queue entry is done (no-op if already done)."""

    branch: BranchId
    order: OrderId


@final
@value
class AppendOutbox:
    """An event for the fulfilling branch's queue and the bus, in order of acceptance."""

    event: Event


Write = (
    MoveStock
    | HoldStoredValue
    | ReleaseHold
    | PostTransfer
    | CountBought
    | PutOrder
    | RememberKey
    | AttributeCustomer
    | ScheduleExpiry
    | CancelExpiry
    | EnqueueFulfillment
    | AckFulfillment
    | AppendOutbox
)


@value
class Plan:
    guards: tuple[Guard, ...]
    writes: tuple[Write, ...]
