"""What follows an applied plan outside the store: stock on the cards, the shopper's own
order frame, the consoles' order facts. Called by every path that applies plans (handlers,
the sweeper). The order event goes to every node on the merchant's personal channel: the
room hub picks the shopper's, the console feed (realtime/consolefeed.py) counts it."""

from __future__ import annotations

from aiohttp import web

from commerce.orders import Order
from streamserver.keys import BUS, STOCK_FEED
from streamserver.store.port import Applied


async def after_apply(app: web.Application, order: Order | None, applied: Applied) -> None:
    if order is None:
        return
    app[STOCK_FEED].changed(order.merchant, applied.stock)
    await app[BUS].publish_personal(
        order.merchant,
        {
            "type": "order",
            "shopper": order.shopper,
            "order": order.id,
            "state": order.state,
            "branch": order.branch,
            "ship_from": order.ship_from,
            "cash_due": order.cash_part,
            # What the consoles count (commerce.board.OrderFact), so no node reads it back.
            "total": order.total,
            "placed_at_ms": order.placed_at_ms,
            "updated_at_ms": order.updated_at_ms,
            "lines": [[line.sku, line.qty] for line in order.lines],
        },
    )
