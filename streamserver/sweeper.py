"""Releases pickup reservations nobody collected, once they are due, and drops
sessions past their expiry (they are refused anyway; this keeps the store from growing
with every guest who ever signed in).

A sweeper over the store's index of due times (DESIGN.md: never key-expiry events).
Idempotent: expiring an order someone just acted on is refused by the plan's
OrderInState guard, and two nodes sweeping at once cannot both expire one order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from commerce import orders
from commerce.orders import Order, Planned
from streamserver.api.orders import now_ms
from streamserver.store.port import Applied, Store

logger = logging.getLogger(__name__)

BATCH_MAX: Final = 200
SESSIONS_PER_ROUND_MAX: Final = 1000
OnApplied = Callable[[Order, Applied], Awaitable[None]]


async def sweep_once(store: Store, on_applied: OnApplied) -> int:
    """Expire what is due now; returns how many orders were expired."""
    expired = 0
    now = now_ms()
    for merchant, order_id in await store.due_expiries(now, BATCH_MAX):
        order = await store.order(merchant, order_id)
        if order is None:
            continue
        planned = orders.expire(order, now)
        if isinstance(planned, Planned):
            result = await store.apply(merchant, planned.plan)
            if isinstance(result, Applied):
                expired += 1
                await on_applied(planned.order, result)
    return expired


async def run_sweeper(store: Store, interval_s: float, on_applied: OnApplied) -> None:
    while True:
        try:
            expired = await sweep_once(store, on_applied)
            if expired:
                logger.info("released %d unpicked pickup order(s)", expired)
            await store.forget_expired_sessions(now_ms(), SESSIONS_PER_ROUND_MAX)
        except Exception:  # keep sweeping: the next round retries what failed
            logger.exception("expiry sweep failed")
        await asyncio.sleep(interval_s)
