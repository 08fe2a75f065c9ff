"""Merchants (brands), their terms, branches (franchise stores) and what they sell.

A branch is a physical shop with coordinates; it holds stock and owns everything sold
in its branch room. Prices are `Amount`s (minor units); rates are basis points.
"""

from __future__ import annotations

from enum import StrEnum

from commerce.ids import Amount, BranchId, MerchantId, ProductId, RateBp, SkuId
from commerce.values import value


@value
class Merchant:
    id: MerchantId
    name: str


class CashbackFunder(StrEnum):
    HQ = "hq"  # the default: HQ's cashback expense
    SELLING_BRANCH = "branch"  # charged to the branch whose room sold the order


@value(kw_only=True)
class Terms:
    """A merchant's money and fulfillment settings."""

    commission_rate_bp: RateBp = RateBp(1000)
    cashback_rate_bp: RateBp = RateBp(0)
    cashback_funder: CashbackFunder = CashbackFunder.HQ
    pickup_hold_s: int = 2 * 3600  # an unpicked pickup order releases its stock after this
    idempotency_keep_s: int = 48 * 3600  # at least 24 h (DESIGN.md)


@value(kw_only=True)
class Branch:
    id: BranchId
    merchant: MerchantId
    name: str
    address: str = ""
    lat: float | None = None
    lng: float | None = None
    is_open: bool = True


@value(kw_only=True)
class Product:
    id: ProductId
    merchant: MerchantId
    name: str


@value(kw_only=True)
class Sku:
    """A sellable variant of a product (size, flavour) with its list price."""

    id: SkuId
    product: ProductId
    merchant: MerchantId
    name: str
    price: Amount


@value(kw_only=True)
class StockLevel:
    """One branch's stock of one SKU. Invariant: sold + reserved + available = received."""

    received: int = 0
    available: int = 0
    reserved: int = 0
    sold: int = 0

    def __post_init__(self) -> None:
        assert min(self.received, self.available, self.reserved, self.sold) >= 0
        assert self.sold + self.reserved + self.available == self.received
