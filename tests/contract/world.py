"""A merchant to test a store with: two branches, two SKUs, and the steps a server takes
(read the view, plan with the core, apply), with no HTTP in between.

Stock arrives the way receipts do (a plan with MoveStock RECEIVE) and stored value the
way top-ups do (a plan posting `ledger.top_up_transfer`). `check_books` is the set of
invariants every test and the state machine assert after each step.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from commerce import ledger
from commerce.catalog import Branch, Merchant, Product, Sku, Terms
from commerce.fulfillment import Coordinates
from commerce.ids import Amount, BranchId, MerchantId, OrderId, ProductId, ShopperId, SkuId
from commerce.orders import FulfillmentKind, Order, PlaceOrder, Planned, place_order
from commerce.plan import MoveStock, Plan, PostTransfer, Refusal, StockMove
from streamserver.store.port import Applied, ApplyResult, Store

ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
NEAR_AT = Coordinates(31.2000, 121.4000)  # the selling branch in most tests
FAR_AT = Coordinates(31.2900, 121.4000)  # about 10 km north
PICKUP_CODE = "246810"
# Not the `random` module: hypothesis seeds it per example, and ids must stay fresh.
_ids = random.SystemRandom()


def new_id(prefix: str) -> str:
    return prefix + "".join(_ids.choices(ALPHABET, k=16))


def now_ms() -> int:
    """The wall clock, as both stores' time guards see it."""
    return time.time_ns() // 1_000_000


@dataclass
class World:
    store: Store
    merchant: MerchantId
    near: Branch
    far: Branch
    tea: Sku
    cake: Sku
    shoppers: set[ShopperId] = field(default_factory=set)

    @classmethod
    async def create(cls, store: Store, terms: Terms | None = None) -> World:
        merchant = MerchantId(new_id("m_"))
        await store.create_merchant(Merchant(merchant, "Cha Li"), new_id("t_"))
        await store.set_terms(
            merchant, terms or Terms(commission_rate_bp=1000, cashback_rate_bp=500)
        )
        near = Branch(
            id=BranchId(new_id("b_")),
            merchant=merchant,
            name="Xuhui",
            lat=NEAR_AT.lat,
            lng=NEAR_AT.lng,
        )
        far = Branch(
            id=BranchId(new_id("b_")),
            merchant=merchant,
            name="Jing'an",
            lat=FAR_AT.lat,
            lng=FAR_AT.lng,
        )
        await store.create_branch(near)
        await store.create_branch(far)
        product = Product(id=ProductId(new_id("p_")), merchant=merchant, name="Milk tea")
        await store.put_product(product)
        tea = Sku(
            id=SkuId(new_id("k_")),
            product=product.id,
            merchant=merchant,
            name="Tea",
            price=Amount(1500),
        )
        cake = Sku(
            id=SkuId(new_id("k_")),
            product=product.id,
            merchant=merchant,
            name="Cake",
            price=Amount(3000),
        )
        await store.put_sku(tea)
        await store.put_sku(cake)
        return cls(store, merchant, near, far, tea, cake)

    # -- the steps a server takes -------------------------------------------------------

    async def apply(self, plan: Plan) -> ApplyResult:
        return await self.store.apply(self.merchant, plan)

    async def receive(self, branch: Branch, sku: Sku, qty: int) -> Applied:
        result = await self.apply(Plan((), (MoveStock(branch.id, sku.id, qty, StockMove.RECEIVE),)))
        assert isinstance(result, Applied), result
        return result

    async def top_up(self, shopper: ShopperId, amount: int) -> None:
        transfer = ledger.top_up_transfer(new_id("topup_"), shopper, Amount(amount), now_ms())
        result = await self.apply(Plan((), (PostTransfer(transfer),)))
        assert isinstance(result, Applied), result
        self.shoppers.add(shopper)

    def command(
        self,
        shopper: ShopperId,
        lines: Sequence[tuple[Sku, int]],
        *,
        fulfillment: FulfillmentKind = FulfillmentKind.PICKUP,
        stored_value: int = 0,
        key: str | None = None,
        digest: str | None = None,
        room: Branch | None = None,
        destination: Coordinates = FAR_AT,
    ) -> PlaceOrder:
        self.shoppers.add(shopper)
        return PlaceOrder(
            order=OrderId(new_id("o_")),
            merchant=self.merchant,
            branch=(room or self.near).id,
            shopper=shopper,
            lines=tuple((sku.id, qty) for sku, qty in lines),
            fulfillment=fulfillment,
            stored_value=Amount(stored_value),
            key=key or new_id("key-"),
            body_digest=digest or new_id("digest-"),
            pickup_code=PICKUP_CODE,
            destination=destination if fulfillment is FulfillmentKind.DELIVERY else None,
            address="1 Huaihai Rd" if fulfillment is FulfillmentKind.DELIVERY else "",
        )

    async def plan(self, cmd: PlaceOrder, at_ms: int | None = None) -> Planned | Refusal:
        view = await self.store.ordering_view(
            self.merchant, cmd.branch, cmd.shopper, [sku for sku, _ in cmd.lines]
        )
        assert view is not None
        return place_order(cmd, view, now_ms() if at_ms is None else at_ms)

    async def place(self, cmd: PlaceOrder, at_ms: int | None = None) -> Order:
        """Place an order that must be accepted; returns it as planned."""
        planned = await self.plan(cmd, at_ms)
        assert isinstance(planned, Planned), planned
        result = await self.apply(planned.plan)
        assert isinstance(result, Applied), result
        return planned.order

    async def act(
        self, action: Callable[[Order, int], Planned | Refusal], order: OrderId
    ) -> ApplyResult:
        """Read the order, plan `action` on it now, apply: what a branch console does."""
        current = await self.store.order(self.merchant, order)
        assert current is not None
        planned = action(current, now_ms())
        assert isinstance(planned, Planned), planned
        return await self.apply(planned.plan)

    async def state(self, order: OrderId) -> str:
        current = await self.store.order(self.merchant, order)
        assert current is not None
        return current.state

    async def level(self, branch: Branch, sku: Sku) -> tuple[int, int, int, int]:
        """(received, available, reserved, sold) of one branch's SKU."""
        stock = await self.store.stock(self.merchant)
        s = stock.get((branch.id, sku.id))
        return (0, 0, 0, 0) if s is None else (s.received, s.available, s.reserved, s.sold)

    async def check_books(self) -> None:
        await check_books(self.store, self.merchant, self.shoppers)


async def check_books(store: Store, merchant: MerchantId, shoppers: set[ShopperId]) -> None:
    """The invariants of DESIGN.md "Money and stock" that a store must keep at all times."""
    transfers = await store.transfers(merchant)
    assert len({t.id for t in transfers}) == len(transfers), "a transfer is stored once"
    derived = ledger.balances(transfers)
    assert sum(derived.values()) == 0, "every posting is balanced"
    stored = await store.account_balances(merchant)  # type: ignore[attr-defined]
    assert {a: v for a, v in stored.items() if v} == {a: v for a, v in derived.items() if v}
    for shopper in shoppers:
        sv = await store.stored_value(merchant, shopper)
        assert sv.balance == derived[ledger.stored_value(shopper)]
        assert sv.held >= 0
        assert sv.spendable >= 0, f"{shopper} holds more stored value than they have"
    for level in (await store.stock(merchant)).values():
        assert min(level.available, level.reserved, level.sold) >= 0
        assert level.sold + level.reserved + level.available == level.received
