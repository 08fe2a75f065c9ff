"""HQ's side of commerce: terms, catalog, stock receipts, live offers, stored-value top-ups,
branch editing and every branch's sales. All `Access.OPERATOR` but the public catalog."""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any, Final

from aiohttp import web

from commerce import ledger
from commerce.catalog import CashbackFunder, Sku, Terms
from commerce.ids import Amount, BranchId, MerchantId, RateBp, ShopperId, SkuId
from commerce.plan import Plan, PostTransfer
from commerce.pricing import Offer
from streamserver import provisioning
from streamserver.api.fulfillment import period
from streamserver.api.merchants import ADDRESS_LENGTH_MAX, NAME_LENGTH_MAX, present_branch
from streamserver.api.orders import now_ms
from streamserver.badinput import (
    BadInput,
    choice_field,
    coordinate_field,
    read_json_object,
    text_field,
)
from streamserver.keys import BUS, READS, STOCK_FEED, STORE
from streamserver.responses import json_response
from streamserver.store import codec

PRICE_MAX: Final = 10**9  # minor units: ten million yuan is no live-commerce price
QTY_MAX: Final = 1_000_000


def _merchant(request: web.Request) -> MerchantId:
    return MerchantId(request.match_info["merchant"])


def int_field(
    data: dict[str, Any], name: str, *, low: int, high: int, default: int | None = None
) -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadInput(name, f"{name} must be a whole number from {low} to {high}")
    return value


def optional_int(data: dict[str, Any], name: str, *, low: int, high: int) -> int | None:
    return None if data.get(name) is None else int_field(data, name, low=low, high=high)


def present_terms(terms: Terms) -> dict[str, Any]:
    return {
        "commission_rate_bp": terms.commission_rate_bp,
        "cashback_rate_bp": terms.cashback_rate_bp,
        "cashback_funder": terms.cashback_funder,
        "pickup_hold_s": terms.pickup_hold_s,
    }


async def get_terms(request: web.Request) -> web.Response:
    return json_response(present_terms(await request.app[STORE].terms(_merchant(request))))


async def put_terms(request: web.Request) -> web.Response:
    data = await read_json_object(request)
    funder = choice_field(data, "cashback_funder", CashbackFunder, CashbackFunder.HQ)
    terms = Terms(
        commission_rate_bp=RateBp(int_field(data, "commission_rate_bp", low=0, high=10_000)),
        cashback_rate_bp=RateBp(int_field(data, "cashback_rate_bp", low=0, high=10_000, default=0)),
        cashback_funder=funder,
        pickup_hold_s=int_field(data, "pickup_hold_s", low=60, high=30 * 86400, default=7200),
    )
    await request.app[STORE].set_terms(_merchant(request), terms)
    return json_response(present_terms(terms))


def present_sku(sku: Sku) -> dict[str, Any]:
    return {"id": sku.id, "product": sku.product, "name": sku.name, "price": sku.price}


async def post_product(request: web.Request) -> web.Response:
    """A product with its SKUs: {"name", "skus": [{"name", "price"}]}."""
    merchant = _merchant(request)
    data = await read_json_object(request)
    name = text_field(data, "name", length_max=NAME_LENGTH_MAX)
    raw = data.get("skus")
    if not isinstance(raw, list) or not 1 <= len(raw) <= 50:
        raise BadInput("skus", "skus must be a list of 1-50 variants")
    skus = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise BadInput(f"skus[{i}]", "each sku is an object with name and price")
        try:
            sku_name = text_field(item, "name", length_max=NAME_LENGTH_MAX)
            price = int_field(item, "price", low=0, high=PRICE_MAX)
        except BadInput as exc:
            raise BadInput(f"skus[{i}].{exc.field}", exc.message) from None
        skus.append((sku_name, Amount(price)))
    product, made = await provisioning.create_product(request.app[STORE], merchant, name, skus)
    return json_response(
        {"id": product.id, "name": product.name, "skus": [present_sku(s) for s in made]}, status=201
    )


async def get_catalog(request: web.Request) -> web.Response:
    store = request.app[STORE]
    merchant = _merchant(request)
    offers = await store.offers(merchant)
    return json_response(
        {
            "skus": [
                {**present_sku(s), "offer": _present_offer(offers.get(s.id))}
                for s in await store.skus(merchant)
            ]
        }
    )


def _present_offer(offer: Offer | None) -> dict[str, Any] | None:
    if offer is None:
        return None
    return {
        "price": offer.price,
        "ends_at_ms": offer.ends_at_ms,
        "limit_per_shopper": offer.limit_per_shopper,
    }


async def _known_sku(request: web.Request, merchant: MerchantId, sku: str) -> SkuId:
    if not any(s.id == sku for s in await request.app[STORE].skus(merchant)):
        raise BadInput("sku", "no such sku", status=404 if "sku" in request.match_info else 400)
    return SkuId(sku)


async def _own_branch(request: web.Request, merchant: MerchantId, branch: object) -> BranchId:
    found = (
        None if not isinstance(branch, str) else await request.app[STORE].branch(BranchId(branch))
    )
    if found is None or found.merchant != merchant:
        raise BadInput("branch", "no such branch")
    return found.id


async def post_stock_receipt(request: web.Request) -> web.Response:
    """Stock arriving at a branch: {"branch", "sku", "qty"}."""
    merchant = _merchant(request)
    data = await read_json_object(request)
    branch = await _own_branch(request, merchant, data.get("branch"))
    sku = await _known_sku(request, merchant, str(data.get("sku", "")))
    qty = int_field(data, "qty", low=1, high=QTY_MAX)
    result = await provisioning.receive_stock(request.app[STORE], merchant, branch, sku, qty)
    request.app[STOCK_FEED].changed(merchant, result.stock)
    return json_response(
        {"branch": branch, "sku": sku, "available": result.stock[0].available}, status=201
    )


async def get_stock(request: web.Request) -> web.Response:
    levels = await request.app[STORE].stock(_merchant(request))
    return json_response(
        {
            "stock": [
                {
                    "branch": branch,
                    "sku": sku,
                    "received": level.received,
                    "available": level.available,
                    "reserved": level.reserved,
                    "sold": level.sold,
                }
                for (branch, sku), level in sorted(levels.items())
            ]
        }
    )


async def put_offer(request: web.Request) -> web.Response:
    """A live price: {"price", "ends_at_ms"?, "limit_per_shopper"?}."""
    merchant = _merchant(request)
    sku = await _known_sku(request, merchant, request.match_info["sku"])
    data = await read_json_object(request)
    offer = Offer(
        sku=sku,
        price=Amount(int_field(data, "price", low=0, high=PRICE_MAX)),
        ends_at_ms=optional_int(data, "ends_at_ms", low=0, high=2**53),
        limit_per_shopper=optional_int(data, "limit_per_shopper", low=1, high=QTY_MAX),
    )
    await request.app[STORE].put_offer(merchant, offer)
    return json_response(_present_offer(offer))


async def delete_offer(request: web.Request) -> web.Response:
    merchant = _merchant(request)
    sku = await _known_sku(request, merchant, request.match_info["sku"])
    await request.app[STORE].remove_offer(merchant, sku)
    return web.Response(status=204)


async def post_top_up(request: web.Request) -> web.Response:
    """Stored value bought with an external payment: {"amount"}."""
    merchant = _merchant(request)
    shopper = ShopperId(request.match_info["shopper"])
    store = request.app[STORE]
    if await store.shopper_name(merchant, shopper) is None:
        raise web.HTTPNotFound(text="no such shopper")
    data = await read_json_object(request)
    amount = Amount(int_field(data, "amount", low=1, high=PRICE_MAX))
    transfer = ledger.top_up_transfer(f"top_up:{secrets.token_hex(8)}", shopper, amount, now_ms())
    await store.apply(merchant, Plan((), (PostTransfer(transfer),)))
    value = await store.stored_value(merchant, shopper)
    return json_response(
        {"balance": value.balance, "held": value.held, "spendable": value.spendable}, status=201
    )


async def patch_branch(request: web.Request) -> web.Response:
    """Edit a branch, or open/close it: any of name, address, lat, lng, is_open."""
    merchant = _merchant(request)
    store = request.app[STORE]
    branch = await store.branch(BranchId(request.match_info["branch"]))
    if branch is None or branch.merchant != merchant:
        raise web.HTTPNotFound(text="no such branch")
    data = await read_json_object(request)
    changes: dict[str, Any] = {}
    if "name" in data:
        changes["name"] = text_field(data, "name", length_max=NAME_LENGTH_MAX)
    if "address" in data:
        changes["address"] = text_field(
            data, "address", length_max=ADDRESS_LENGTH_MAX, required=False
        )
    if "lat" in data:
        changes["lat"] = coordinate_field(data, "lat", bound=90)
    if "lng" in data:
        changes["lng"] = coordinate_field(data, "lng", bound=180)
    if "is_open" in data:
        if not isinstance(data["is_open"], bool):
            raise BadInput("is_open", "is_open must be true or false")
        changes["is_open"] = data["is_open"]
    updated = replace(branch, **changes)
    await store.update_branch(updated)
    request.app[READS].forget_branch(updated.id)
    # Rooms on every node render the branch as it is now (open, closed, renamed).
    await request.app[BUS].publish_personal(
        merchant, {"type": "branch", "branch": codec.branch_to_dict(updated)}
    )
    return json_response(present_branch(updated))


async def get_sales(request: web.Request) -> web.Response:
    """Every branch's statement for a period, ranked by sales, with totals."""
    merchant = _merchant(request)
    store = request.app[STORE]
    start, end = period(request)
    transfers = await store.transfers(merchant, start, end)
    figures = ("sales", "commission", "cashback_cost", "net")
    rows: list[tuple[str, str, dict[str, int]]] = []
    for branch in await store.branches(merchant):
        s = ledger.statement(branch.id, transfers)
        numbers: dict[str, int] = {"sales": s.sales, "commission": s.commission}
        numbers |= {"cashback_cost": s.cashback_cost, "net": s.net}
        rows.append((branch.id, branch.name, numbers))
    rows.sort(key=lambda row: (-row[2]["sales"], row[1]))
    branches = [{"branch": b, "name": name, **numbers} for b, name, numbers in rows]
    totals = {k: sum(numbers[k] for _, _, numbers in rows) for k in figures}
    return json_response({"branches": branches, "totals": totals})
