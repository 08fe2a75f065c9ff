"""The Store port: everything the edges persist, behind one Protocol with two adapters.

`sqlite.SqliteStore` is the embedded default; `redis.RedisStore` shares state between
nodes. The contract tests (tests/contract/) run every behaviour against both.

Commerce goes through `apply(merchant, plan)`: every guard of the plan is checked and
every write made atomically (one SQLite transaction, one Lua script), or nothing is
written and the first failing guard's `Refusal` comes back. Guard semantics:

- KeyUnseen(shopper, key, digest): no order remembered under (merchant, shopper, key).
  If one is, with the same digest, the answer is `Replayed(order)` and nothing is
  written; with another digest, `Refusal(KEY_REUSED, field="key")`.
- StockAtLeast(branch, sku, qty): available >= qty, else SOLD_OUT.
- BalanceAtLeast(shopper, amount): stored-value balance - held >= amount, else
  INSUFFICIENT_BALANCE.
- BoughtAtMost(shopper, sku, qty): bought so far <= qty, else OVER_LIMIT.
- OrderInState(order, state): the stored order is in `state`, else
  NOT_ALLOWED_IN_STATE.
- BeforeTime(deadline, reason) / NotBeforeTime(due, reason): the store's clock (Redis:
  the script's TIME) is < deadline / >= due, else `reason`.

Writes: MoveStock (columns per StockMove), HoldStoredValue / ReleaseHold (pending
amounts per shopper and order), PostTransfer (insert the immutable transfer, add its
amount to both accounts' balances: credit +, debit -), CountBought (+/- qty),
PutOrder (upsert, indexed by selling branch, fulfilling branch and shopper),
RememberKey (kept until expires_at_ms), AttributeCustomer (insert if absent),
ScheduleExpiry / CancelExpiry (an index of due times), EnqueueFulfillment /
AckFulfillment (the fulfilling branch's queue), AppendOutbox (every event, in order).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from commerce.access import Actor, Role
from commerce.cards import Card
from commerce.catalog import Branch, Merchant, Product, Sku, StockLevel, Terms
from commerce.events import OrderEvent
from commerce.ids import Amount, BranchId, CardId, MerchantId, OrderId, ShopperId, ShowId, SkuId
from commerce.ledger import Transfer
from commerce.orders import Order, OrderingView
from commerce.plan import Plan, Refusal
from commerce.pricing import Offer
from commerce.shows import Show, ShowStatus
from commerce.values import value


@value
class StockChange:
    branch: BranchId
    sku: SkuId
    available: int  # absolute, after the plan: a lost UI event heals with the next


@value
class Applied:
    stock: tuple[StockChange, ...]


@value
class Replayed:
    order: OrderId


ApplyResult = Applied | Replayed | Refusal


@value
class StoredValue:
    balance: Amount
    held: Amount

    @property
    def spendable(self) -> Amount:
        return Amount(self.balance - self.held)


@value
class Customer:
    shopper: ShopperId
    branch: BranchId
    since_ms: int


@value
class QueueEntry:
    id: str  # the adapter's position (SQLite seq, Redis stream id); ascending
    order: OrderId


@value
class OutboxEntry:
    seq: int
    event: OrderEvent


@value(kw_only=True)
class User:
    """A person who signs in with a password: an HQ operator or a branch's franchisee."""

    merchant: MerchantId
    username: str
    role: Role
    branch: BranchId | None
    password_hash: str


@value
class Session:
    actor: Actor
    expires_at_ms: int


@value
class Durability:
    """Whether an acknowledged order survives a crash of the store's process."""

    safe: bool
    detail: str


class Store(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def durability(self) -> Durability: ...

    # directory
    async def create_merchant(self, merchant: Merchant, operator_token: str) -> None: ...
    async def merchant(self, merchant_id: MerchantId) -> Merchant | None: ...
    async def is_operator_token(self, merchant_id: MerchantId, token: str) -> bool: ...
    async def set_terms(self, merchant_id: MerchantId, terms: Terms) -> None: ...
    async def terms(self, merchant_id: MerchantId) -> Terms: ...
    async def create_branch(self, branch: Branch) -> None: ...
    async def update_branch(self, branch: Branch) -> None: ...
    async def branch(self, branch_id: BranchId) -> Branch | None: ...
    async def branches(self, merchant_id: MerchantId) -> list[Branch]: ...
    async def create_show(self, show: Show, host_token: str) -> None: ...
    async def show(self, show_id: ShowId) -> Show | None: ...
    async def shows(self, merchant_id: MerchantId) -> list[Show]: ...  # newest first
    async def set_show_status(self, show_id: ShowId, status: ShowStatus) -> None: ...
    async def pause_live_shows(self) -> int: ...
    async def is_host_token(self, show_id: ShowId, token: str) -> bool: ...

    # catalog
    async def put_product(self, product: Product) -> None: ...
    async def put_sku(self, sku: Sku) -> None: ...
    async def skus(self, merchant_id: MerchantId) -> list[Sku]: ...
    async def put_offer(self, merchant_id: MerchantId, offer: Offer) -> None: ...
    async def remove_offer(self, merchant_id: MerchantId, sku: SkuId) -> None: ...
    async def offers(self, merchant_id: MerchantId) -> dict[SkuId, Offer]: ...

    # cards pinned in shows
    async def put_card(self, merchant_id: MerchantId, card: Card) -> None: ...
    async def remove_card(self, merchant_id: MerchantId, show: ShowId, card: CardId) -> None: ...
    async def cards(self, show: ShowId) -> list[Card]: ...
    async def shows_pinning(self, merchant_id: MerchantId, sku: SkuId) -> list[ShowId]: ...

    # commerce
    async def apply(self, merchant_id: MerchantId, plan: Plan) -> ApplyResult: ...
    async def ordering_view(
        self, merchant_id: MerchantId, selling: BranchId, shopper: ShopperId, skus: Sequence[SkuId]
    ) -> OrderingView | None: ...
    async def order(self, merchant_id: MerchantId, order_id: OrderId) -> Order | None: ...
    async def awaiting_pickup(
        self, merchant_id: MerchantId, branch: BranchId, code: str
    ) -> list[Order]: ...  # orders.awaits_pickup, fulfilled by `branch`, with that code
    async def orders(
        self,
        merchant_id: MerchantId,
        *,
        branch: BranchId | None = None,  # sold or fulfilled by this branch
        shopper: ShopperId | None = None,
        limit: int = 100,
    ) -> list[Order]: ...
    async def stock(self, merchant_id: MerchantId) -> dict[tuple[BranchId, SkuId], StockLevel]: ...
    async def stored_value(self, merchant_id: MerchantId, shopper: ShopperId) -> StoredValue: ...
    async def transfers(
        self, merchant_id: MerchantId, from_ms: int = 0, to_ms: int = 2**62
    ) -> list[Transfer]: ...
    async def account_balances(self, merchant_id: MerchantId) -> dict[str, int]: ...
    async def customers(self, merchant_id: MerchantId, branch: BranchId) -> list[Customer]: ...
    async def due_expiries(self, now_ms: int, limit: int) -> list[tuple[MerchantId, OrderId]]: ...
    async def queue(
        self, merchant_id: MerchantId, branch: BranchId, limit: int = 100
    ) -> list[QueueEntry]: ...
    async def outbox(
        self, merchant_id: MerchantId, after_seq: int, limit: int = 100
    ) -> list[OutboxEntry]: ...

    # identities: sessions are looked up by the SHA-256 digest of their random token
    async def create_user(self, user: User) -> bool: ...  # False if the username is taken
    async def user(self, merchant_id: MerchantId, username: str) -> User | None: ...
    async def users_named(self, username: str, limit: int = 10) -> list[User]: ...  # any merchant
    async def create_shopper(
        self, merchant_id: MerchantId, shopper: ShopperId, name: str
    ) -> None: ...
    async def shopper_name(self, merchant_id: MerchantId, shopper: ShopperId) -> str | None: ...
    async def create_session(self, token_sha256: bytes, session: Session) -> None: ...
    async def session(self, token_sha256: bytes) -> Session | None: ...
    async def delete_session(self, token_sha256: bytes) -> None: ...
    async def forget_expired_sessions(self, now_ms: int, limit: int) -> int: ...  # how many
