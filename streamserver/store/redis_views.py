"""Ordering views on Redis: the purchases of one loop tick read in one script call.

Each purchase reads its view before the core plans it (commerce/orders.py). One by one
that was two pipelines per purchase, and redis-py spends about 100 us of client CPU per
call: the client, not Redis, was the limit. Here the views asked for in one loop tick
for one merchant go to ordering_views.lua together, as apply_plan.lua takes the plans.

The catalog rows a view holds change a few times a day, while thousands of purchases
read them: their decoding is memoised by their exact stored text, so an edit is seen at
once (it is new text) and nothing stale can be served.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Final

import orjson

from commerce.catalog import Branch, Sku, Terms
from commerce.ids import BranchId, MerchantId, ShopperId, SkuId
from commerce.orders import OrderingView
from commerce.pricing import Offer
from streamserver.store import codec
from streamserver.store.redis_rows import branches_from_rows, prefix, sku_from_row
from streamserver.store.redis_wire import Script, Wire

VIEWS_PER_CALL_MAX: Final = 32  # smaller calls overlap with the loop's work: 5,600 -> 6,100/s
DECODED_MAX: Final = 4096
_SCRIPT: Final = Script(
    resources.files("streamserver.store").joinpath("ordering_views.lua").read_text()
)


@dataclass(slots=True)
class _Asked:
    shopper: ShopperId
    selling: BranchId
    skus: tuple[SkuId, ...]
    future: asyncio.Future[OrderingView | None]


@dataclass(slots=True)
class _Batch:
    merchant: MerchantId
    asked: list[_Asked] = field(default_factory=list)
    sent: bool = False


class OrderingViews:
    def __init__(self, wire: Wire) -> None:
        self._wire = wire
        self._open: dict[MerchantId, _Batch] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._branch_ids: dict[MerchantId, tuple[BranchId, ...]] = {}  # as last read

    async def view(
        self, merchant: MerchantId, selling: BranchId, shopper: ShopperId, skus: Sequence[SkuId]
    ) -> OrderingView | None:
        loop = asyncio.get_running_loop()
        batch = self._open.get(merchant)
        if batch is None:
            batch = self._open[merchant] = _Batch(merchant)
            loop.call_soon(self._send, batch)
        future: asyncio.Future[OrderingView | None] = loop.create_future()
        batch.asked.append(_Asked(shopper, selling, tuple(skus), future))
        if len(batch.asked) >= VIEWS_PER_CALL_MAX:
            self._send(batch)
        return await future

    async def close(self) -> None:
        for batch in list(self._open.values()):
            self._send(batch)
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    def _send(self, batch: _Batch) -> None:
        if batch.sent:
            return
        batch.sent = True
        if self._open.get(batch.merchant) is batch:
            del self._open[batch.merchant]
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, batch: _Batch) -> None:
        try:
            views = await self._read(batch)
        except Exception as exc:
            for asked in batch.asked:
                if not asked.future.done():
                    asked.future.set_exception(exc)
            return
        for asked, view in zip(batch.asked, views, strict=True):
            if not asked.future.done():
                asked.future.set_result(view)

    async def _read(self, batch: _Batch) -> list[OrderingView | None]:
        m = batch.merchant
        p = prefix(m)
        skus = tuple(dict.fromkeys(s for asked in batch.asked for s in asked.skus))
        argv: list[Any] = [len(skus), *skus]
        for asked in batch.asked:
            argv += [len(asked.skus), *(f"{asked.shopper}|{s}" for s in asked.skus)]
        while True:  # twice at most: once more if the branches changed since last read
            expected = self._branch_ids.get(m, ())
            stock_keys = [f"{p}stock:{b}:{s}" for b in expected for s in skus]
            keys = [p + name for name in ("branches", "merchant", "skus", "offers", "bought")]
            reply = await _SCRIPT.run(self._wire, [*keys, *stock_keys], argv)
            branches = _branches(m, tuple(reply[0]))
            ids = tuple(b.id for b in branches)
            self._branch_ids[m] = ids
            if ids == expected:
                break
        terms = Terms() if reply[1] is None else _terms(reply[1])
        found = {s: _sku(m, body) for s, body in zip(skus, reply[2], strict=True) if body}
        offers = {s: _offer(body) for s, body in zip(skus, reply[3], strict=True) if body}
        levels = {
            (b, s): int(level)
            for (b, s), level in zip(((b, s) for b in ids for s in skus), reply[4], strict=True)
            if level is not None
        }
        views: list[OrderingView | None] = []
        # A flash sale's views differ only in what each shopper bought: the rest is
        # built once per (room, SKUs) in the batch.
        shared: dict[tuple[BranchId, tuple[SkuId, ...]], OrderingView | None] = {}
        for asked, bought in zip(batch.asked, reply[5], strict=True):
            room = (asked.selling, asked.skus)
            if room not in shared:
                own = next((b for b in branches if b.id == asked.selling), None)
                shared[room] = (
                    None
                    if own is None
                    else OrderingView(
                        terms=terms,
                        selling=own,
                        branches=branches,
                        skus={s: found[s] for s in asked.skus if s in found},
                        offers={s: offers[s] for s in asked.skus if s in offers},
                        available={
                            (b, s): levels[b, s]
                            for b in ids
                            for s in asked.skus
                            if (b, s) in levels
                        },
                        bought={},
                    )
                )
            view = shared[room]
            if view is not None and any(bought):
                counts = {s: int(n) for s, n in zip(asked.skus, bought, strict=True) if n}
                view = OrderingView(
                    terms=terms,
                    selling=view.selling,
                    branches=branches,
                    skus=view.skus,
                    offers=view.offers,
                    available=view.available,
                    bought=counts,
                )
            views.append(view)
        return views


# -- decoding, memoised by the stored text ----------------------------------------------


@functools.lru_cache(maxsize=64)
def _branches(merchant: MerchantId, flat: tuple[str, ...]) -> tuple[Branch, ...]:
    return tuple(branches_from_rows(merchant, flat[1::2]))  # HGETALL: field, value, ...


@functools.lru_cache(maxsize=64)
def _terms(body: str) -> Terms:
    return codec.terms_from_dict(orjson.loads(body))


@functools.lru_cache(maxsize=DECODED_MAX)
def _sku(merchant: MerchantId, body: str) -> Sku:
    return sku_from_row(merchant, orjson.loads(body))


@functools.lru_cache(maxsize=DECODED_MAX)
def _offer(body: str) -> Offer:
    return codec.offer_from_dict(orjson.loads(body))
