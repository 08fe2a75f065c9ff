"""Prices at the moment of buying: the list price, or the live flash price while its
window runs, with the per-shopper limit that comes with it."""

from __future__ import annotations

from commerce.catalog import Sku
from commerce.ids import Amount, SkuId
from commerce.values import value


@value(kw_only=True)
class Offer:
    """A live price for a SKU, set by the host (a pinned card carries one).

    When its window ends the sale ends with it (FLASH_ENDED): a shopper is never charged
    a price other than the one on the card they tapped.
    """

    sku: SkuId
    price: Amount
    ends_at_ms: int | None = None
    limit_per_shopper: int | None = None


def unit_price(sku: Sku, offer: Offer | None, now_ms: int) -> Amount | None:
    """What one unit costs now; None when the SKU's flash sale has ended."""
    if offer is None:
        return sku.price
    if offer.ends_at_ms is not None and now_ms >= offer.ends_at_ms:
        return None
    return offer.price
