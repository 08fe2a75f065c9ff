"""Facts that leave the core through the outbox: the fulfilling branch's queue, the
bus, and later webhooks. Past tense; small (a consumer reads the order for detail)."""

from __future__ import annotations

from commerce.ids import BranchId, OrderId, ShopperId
from commerce.values import value


@value(kw_only=True)
class OrderEvent:
    """An order was placed or changed state (`state` is the state it is now in)."""

    order: OrderId
    selling: BranchId
    ship_from: BranchId
    shopper: ShopperId
    state: str
    at_ms: int


Event = OrderEvent
