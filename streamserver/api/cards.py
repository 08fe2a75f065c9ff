"""The host's cards: pin a product in the show, change its flash price, take it down.

Pinning sets the SKU's live offer (what a shopper pays is what the card shows) and
publishes the card to every branch room through the bus, with the stock of every
branch so each room renders its own.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aiohttp import web

from commerce import cards
from commerce.cards import Card
from commerce.ids import BranchId, CardId, MerchantId, SkuId
from commerce.shows import ShowStatus
from streamserver.api.catalog import PRICE_MAX, QTY_MAX, int_field, optional_int
from streamserver.api.lookup import find_show
from streamserver.api.orders import now_ms
from streamserver.badinput import BadInput, read_json_object, text_field
from streamserver.ids import new_id
from streamserver.keys import BUS, STORE
from streamserver.responses import json_response
from streamserver.store import codec

TITLE_LENGTH_MAX = 120


def present_card(card: Card) -> dict[str, Any]:
    return codec.card_to_dict(card)


async def _stock_of(request: web.Request, merchant: MerchantId, sku: SkuId) -> dict[BranchId, int]:
    levels = await request.app[STORE].stock(merchant)
    return {branch: level.available for (branch, s), level in levels.items() if s == sku}


def _terms(data: dict[str, Any], card: Card) -> Card:
    """Price, flash end, limit and title from a request body, over `card`'s values."""
    changes: dict[str, Any] = {}
    if "title" in data:
        changes["title"] = text_field(data, "title", length_max=TITLE_LENGTH_MAX)
    if "price" in data:
        changes["price"] = int_field(data, "price", low=0, high=PRICE_MAX)
    if "ends_at_ms" in data:
        changes["ends_at_ms"] = optional_int(data, "ends_at_ms", low=0, high=2**53)
    if "limit_per_shopper" in data:
        changes["limit_per_shopper"] = optional_int(data, "limit_per_shopper", low=1, high=QTY_MAX)
    return replace(card, **changes)


async def _publish(request: web.Request, card: Card, kind: str, merchant: MerchantId) -> None:
    stock = await _stock_of(request, merchant, card.sku)
    event = {"type": kind, "card": codec.card_to_dict(card), "stock": stock}
    await request.app[BUS].publish(card.show, event)


async def post_card(request: web.Request) -> web.Response:
    """Pin: {"sku", "title"?, "price"?, "ends_at_ms"?, "limit_per_shopper"?}."""
    show = await find_show(request)
    if show.status is ShowStatus.ENDED:
        raise web.HTTPGone(text="the show has ended")
    store = request.app[STORE]
    data = await read_json_object(request)
    sku_id = data.get("sku")
    sku = next((s for s in await store.skus(show.merchant) if s.id == sku_id), None)
    if sku is None:
        raise BadInput("sku", "no such sku")
    card = _terms(data, cards.pin(CardId(new_id("card")), show.id, sku, "", now_ms()))
    await store.put_offer(show.merchant, card.offer())
    await store.put_card(show.merchant, card)
    await _publish(request, card, "card.shown", show.merchant)
    return json_response(present_card(card), status=201)


async def _find_card(request: web.Request) -> tuple[MerchantId, Card]:
    show = await find_show(request)
    card_id = request.match_info["card"]
    card = next((c for c in await request.app[STORE].cards(show.id) if c.id == card_id), None)
    if card is None:
        raise web.HTTPNotFound(text="no such card in this show")
    return show.merchant, card


async def patch_card(request: web.Request) -> web.Response:
    merchant, card = await _find_card(request)
    updated = _terms(await read_json_object(request), card)
    store = request.app[STORE]
    await store.put_offer(merchant, updated.offer())
    await store.put_card(merchant, updated)
    await _publish(request, updated, "card.updated", merchant)
    return json_response(present_card(updated))


async def delete_card(request: web.Request) -> web.Response:
    merchant, card = await _find_card(request)
    await unpin(request.app, merchant, card)
    return web.Response(status=204)


async def unpin(app: web.Application, merchant: MerchantId, card: Card) -> None:
    """Take a card down; the SKU's live price becomes another show's card's, or the list
    price when no card pins it any more."""
    store = app[STORE]
    await store.remove_card(merchant, card.show, card.id)
    remaining = [
        c
        for show in await store.shows_pinning(merchant, card.sku)
        for c in await store.cards(show)
        if c.sku == card.sku
    ]
    if remaining:
        await store.put_offer(merchant, max(remaining, key=lambda c: c.pinned_at_ms).offer())
    else:
        await store.remove_offer(merchant, card.sku)
    await app[BUS].publish(card.show, {"type": "card.hidden", "card": card.id})


async def get_cards(request: web.Request) -> web.Response:
    """The show's cards with stock left across all branches (for the host)."""
    show = await find_show(request)
    store = request.app[STORE]
    levels = await store.stock(show.merchant)
    pinned = []
    for card in await store.cards(show.id):
        left = sum(level.available for (_, sku), level in levels.items() if sku == card.sku)
        pinned.append({**present_card(card), "stock_left": left})
    return json_response({"cards": pinned})
