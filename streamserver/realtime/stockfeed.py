"""Stock on the cards follows purchases live, coalesced.

Every applied plan reports the absolute stock it left (`Applied.stock`). The feed
keeps only the latest value per (merchant, SKU, branch) and, a few times a second,
publishes one `stock` event per SKU to each show that pins it: a flash sale of
thousands of purchases a second costs the rooms a handful of frames, and the latest
value always goes out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Final

from commerce.ids import BranchId, MerchantId, SkuId
from streamserver.bus.port import Bus
from streamserver.store.port import StockChange, Store

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_S: Final = 0.25


class StockFeed:
    def __init__(self, store: Store, bus: Bus, interval_s: float = FLUSH_INTERVAL_S) -> None:
        self._store = store
        self._bus = bus
        self._interval_s = interval_s
        self._dirty: dict[tuple[MerchantId, SkuId], dict[BranchId, int]] = defaultdict(dict)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def changed(self, merchant: MerchantId, changes: Iterable[StockChange]) -> None:
        for change in changes:
            self._dirty[(merchant, change.sku)][change.branch] = change.available
            self._wake.set()

    async def flush(self) -> None:
        dirty, self._dirty = self._dirty, defaultdict(dict)
        for (merchant, sku), levels in dirty.items():
            event = {"type": "stock", "sku": sku, "stock": dict(levels)}
            for show in await self._store.shows_pinning(merchant, sku):
                await self._bus.publish(show, event)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # the next change publishes absolute values again
                logger.exception("stock feed flush failed")
            await asyncio.sleep(self._interval_s)
