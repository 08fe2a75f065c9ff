"""How the catalog is laid out in Redis: each merchant's key prefix, and its rows
(JSON text in hashes) read back as values. Shared by the store and its view reader."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from commerce.catalog import Branch, Sku
from commerce.ids import Amount, BranchId, MerchantId, ProductId, SkuId


def prefix(merchant: MerchantId) -> str:
    """The hash-tagged prefix of every key of `merchant`."""
    return f"{{m:{merchant}}}:"


def branch_from_row(merchant: MerchantId, d: dict[str, Any]) -> Branch:
    return Branch(
        id=BranchId(d["id"]),
        merchant=merchant,
        name=d["name"],
        address=d["address"],
        lat=d["lat"],
        lng=d["lng"],
        is_open=bool(d["is_open"]),
    )


def branches_from_rows(merchant: MerchantId, bodies: Iterable[str]) -> list[Branch]:
    """A merchant's branches hash (JSON values) in the order they were created."""
    decoded = sorted((orjson.loads(body) for body in bodies), key=lambda d: int(d["seq"]))
    return [branch_from_row(merchant, d) for d in decoded]


def sku_from_row(merchant: MerchantId, d: dict[str, Any]) -> Sku:
    return Sku(
        id=SkuId(d["id"]),
        product=ProductId(d["product"]),
        merchant=merchant,
        name=d["name"],
        price=Amount(d["price"]),
    )
