"""What follows an applied plan outside the store: stock on the cards, the shopper's own
order frame. Called by every path that applies plans (handlers, the sweeper)."""

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
            "shopper": order.shopper,
            "order": order.id,
            "state": order.state,
            "branch": order.branch,
            "ship_from": order.ship_from,
            "cash_due": order.cash_part,
        },
    )
