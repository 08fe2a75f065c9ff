"""The embedded store's in-memory copy of what an ordering view reads.

SQLite has one writer, this process's write loop, so the copy can be exact: what is
missing is loaded by a job on the write thread (between two batches), and every
change is applied on the event loop in commit order, by the same callback that answers
the batch's callers. A purchase then builds its view without a thread hop; the hop and
the row decoding were a third of a purchase's cost. Guards in the transaction still
decide every race: the copy only has to be no older than what was acknowledged.

Kept: per merchant the catalog (terms, branches, SKUs, offers; dropped on any write to
them and reloaded whole, they change a few times a day), per SKU its available level in
every branch, and per shopper and SKU the units bought, only for SKUs whose offer limits
a shopper (bounded: least recently used entries go).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from cachetools import LRUCache

from commerce.catalog import Branch, Sku, Terms
from commerce.ids import BranchId, MerchantId, ShopperId, SkuId
from commerce.orders import OrderingView
from commerce.plan import CountBought, Plan
from commerce.pricing import Offer
from commerce.values import value
from streamserver.store.port import StockChange

BOUGHT_ENTRIES_MAX: Final = 200_000


@value
class Catalog:
    terms: Terms
    branches: tuple[Branch, ...]
    skus: Mapping[SkuId, Sku]
    offers: Mapping[SkuId, Offer]


@value
class Missing:
    """What a view needs that memory lacks: one load on the write thread fetches it."""

    catalog: bool
    levels: tuple[SkuId, ...]
    bought: tuple[SkuId, ...]  # of the shopper asking, limited SKUs only


@value
class Loaded:
    merchant: MerchantId
    shopper: ShopperId
    catalog: Catalog | None
    levels: Mapping[SkuId, dict[BranchId, int]]
    bought: Mapping[SkuId, int]  # every asked SKU, 0 where nothing was bought


class OrderingMemory:
    def __init__(self, bought_entries_max: int = BOUGHT_ENTRIES_MAX) -> None:
        self._catalogs: dict[MerchantId, Catalog] = {}
        self._levels: dict[tuple[MerchantId, SkuId], dict[BranchId, int]] = {}
        self._bought: LRUCache[tuple[MerchantId, ShopperId, SkuId], int] = LRUCache(
            bought_entries_max
        )

    def missing(
        self, merchant: MerchantId, shopper: ShopperId, skus: Sequence[SkuId]
    ) -> Missing | None:
        catalog = self._catalogs.get(merchant)
        levels = tuple(s for s in skus if (merchant, s) not in self._levels)
        bought: tuple[SkuId, ...] = ()
        if catalog is not None:
            bought = tuple(
                s
                for s in skus
                if _limits(catalog.offers.get(s)) and (merchant, shopper, s) not in self._bought
            )
        if catalog is not None and not levels and not bought:
            return None
        return Missing(catalog is None, levels, bought)

    def view(
        self, merchant: MerchantId, selling: BranchId, shopper: ShopperId, skus: Sequence[SkuId]
    ) -> OrderingView | None:
        """The view, from memory; `missing` must have answered None just before."""
        catalog = self._catalogs[merchant]
        own = next((b for b in catalog.branches if b.id == selling), None)
        if own is None:
            return None
        available: dict[tuple[BranchId, SkuId], int] = {}
        bought: dict[SkuId, int] = {}
        for sku in skus:
            for branch, level in self._levels[merchant, sku].items():
                available[branch, sku] = level
            count = self._bought.get((merchant, shopper, sku))
            if count:
                bought[sku] = count
        return OrderingView(
            terms=catalog.terms,
            selling=own,
            branches=catalog.branches,
            skus={s: catalog.skus[s] for s in skus if s in catalog.skus},
            offers={s: catalog.offers[s] for s in skus if s in catalog.offers},
            available=available,
            bought=bought,
        )

    # -- kept in commit order (called from the writer's answers, on the event loop) -----

    def loaded(self, loaded: Loaded) -> None:
        if loaded.catalog is not None:
            self._catalogs[loaded.merchant] = loaded.catalog
        for sku, levels in loaded.levels.items():
            self._levels[loaded.merchant, sku] = levels
        for sku, count in loaded.bought.items():
            self._bought[loaded.merchant, loaded.shopper, sku] = count

    def forget_catalog(self, merchant: MerchantId) -> None:
        self._catalogs.pop(merchant, None)

    def forget_all(self) -> None:
        """After a write whose outcome is unknown: everything is read again."""
        self._catalogs.clear()
        self._levels.clear()
        self._bought.clear()

    def committed(self, merchant: MerchantId, plan: Plan, stock: Iterable[StockChange]) -> None:
        for change in stock:
            levels = self._levels.get((merchant, change.sku))
            if levels is not None:
                levels[change.branch] = change.available
        for write in plan.writes:
            if isinstance(write, CountBought):
                key = (merchant, write.shopper, write.sku)
                count = self._bought.get(key)
                if count is not None:
                    self._bought[key] = count + write.qty


def _limits(offer: Offer | None) -> bool:
    return offer is not None and offer.limit_per_shopper is not None
