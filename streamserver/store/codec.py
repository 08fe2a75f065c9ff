"""JSON forms of core values, shared by every store adapter (one encoding, one decoder)."""

from __future__ import annotations

from typing import Any

import orjson

from commerce.access import Actor, Role
from commerce.cards import Card
from commerce.catalog import Branch, CashbackFunder, Terms
from commerce.events import OrderEvent
from commerce.ids import (
    Amount,
    BranchId,
    CardId,
    MerchantId,
    OrderId,
    RateBp,
    ShopperId,
    ShowId,
    SkuId,
)
from commerce.ledger import Code, Transfer
from commerce.orders import FulfillmentKind, Line, Order, OrderState
from commerce.pricing import Offer


def dumps(value: dict[str, Any]) -> str:
    return orjson.dumps(value).decode()


def order_to_dict(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "merchant": order.merchant,
        "branch": order.branch,
        "shopper": order.shopper,
        "lines": [[line.sku, line.qty, line.unit_price] for line in order.lines],
        "fulfillment": order.fulfillment,
        "ship_from": order.ship_from,
        "total": order.total,
        "stored_value_part": order.stored_value_part,
        "commission_rate_bp": order.commission_rate_bp,
        "cashback_rate_bp": order.cashback_rate_bp,
        "cashback_funder": order.cashback_funder,
        "state": order.state,
        "placed_at_ms": order.placed_at_ms,
        "updated_at_ms": order.updated_at_ms,
        "pickup_code": order.pickup_code,
        "expires_at_ms": order.expires_at_ms,
        "address": order.address,
        "cashback": order.cashback,
    }


def order_from_dict(d: dict[str, Any]) -> Order:
    return Order(
        id=OrderId(d["id"]),
        merchant=MerchantId(d["merchant"]),
        branch=BranchId(d["branch"]),
        shopper=ShopperId(d["shopper"]),
        lines=tuple(Line(SkuId(sku), int(qty), Amount(price)) for sku, qty, price in d["lines"]),
        fulfillment=FulfillmentKind(d["fulfillment"]),
        ship_from=BranchId(d["ship_from"]),
        total=Amount(d["total"]),
        stored_value_part=Amount(d["stored_value_part"]),
        commission_rate_bp=RateBp(d["commission_rate_bp"]),
        cashback_rate_bp=RateBp(d["cashback_rate_bp"]),
        cashback_funder=CashbackFunder(d["cashback_funder"]),
        state=OrderState(d["state"]),
        placed_at_ms=int(d["placed_at_ms"]),
        updated_at_ms=int(d["updated_at_ms"]),
        pickup_code=d["pickup_code"],
        expires_at_ms=d["expires_at_ms"],
        address=d["address"],
        cashback=Amount(d["cashback"]),
    )


def transfer_to_dict(t: Transfer) -> dict[str, Any]:
    return {
        "id": t.id,
        "debit": t.debit,
        "credit": t.credit,
        "amount": t.amount,
        "code": t.code,
        "at_ms": t.at_ms,
        "order": t.order,
        "branch": t.branch,
    }


def transfer_from_dict(d: dict[str, Any]) -> Transfer:
    return Transfer(
        id=d["id"],
        debit=d["debit"],
        credit=d["credit"],
        amount=Amount(d["amount"]),
        code=Code(d["code"]),
        at_ms=int(d["at_ms"]),
        order=None if d["order"] is None else OrderId(d["order"]),
        branch=None if d["branch"] is None else BranchId(d["branch"]),
    )


def terms_to_dict(terms: Terms) -> dict[str, Any]:
    return {
        "commission_rate_bp": terms.commission_rate_bp,
        "cashback_rate_bp": terms.cashback_rate_bp,
        "cashback_funder": terms.cashback_funder,
        "pickup_hold_s": terms.pickup_hold_s,
        "idempotency_keep_s": terms.idempotency_keep_s,
    }


def terms_from_dict(d: dict[str, Any]) -> Terms:
    return Terms(
        commission_rate_bp=RateBp(d["commission_rate_bp"]),
        cashback_rate_bp=RateBp(d["cashback_rate_bp"]),
        cashback_funder=CashbackFunder(d["cashback_funder"]),
        pickup_hold_s=int(d["pickup_hold_s"]),
        idempotency_keep_s=int(d["idempotency_keep_s"]),
    )


def offer_to_dict(offer: Offer) -> dict[str, Any]:
    return {
        "sku": offer.sku,
        "price": offer.price,
        "ends_at_ms": offer.ends_at_ms,
        "limit_per_shopper": offer.limit_per_shopper,
    }


def offer_from_dict(d: dict[str, Any]) -> Offer:
    return Offer(
        sku=SkuId(d["sku"]),
        price=Amount(d["price"]),
        ends_at_ms=d["ends_at_ms"],
        limit_per_shopper=d["limit_per_shopper"],
    )


def event_to_dict(e: OrderEvent) -> dict[str, Any]:
    return {
        "order": e.order,
        "selling": e.selling,
        "ship_from": e.ship_from,
        "shopper": e.shopper,
        "state": e.state,
        "at_ms": e.at_ms,
    }


def event_from_dict(d: dict[str, Any]) -> OrderEvent:
    return OrderEvent(
        order=OrderId(d["order"]),
        selling=BranchId(d["selling"]),
        ship_from=BranchId(d["ship_from"]),
        shopper=ShopperId(d["shopper"]),
        state=d["state"],
        at_ms=int(d["at_ms"]),
    )


def actor_to_dict(actor: Actor) -> dict[str, Any]:
    return {
        "role": actor.role,
        "merchant": actor.merchant,
        "branch": actor.branch,
        "shopper": actor.shopper,
    }


def actor_from_dict(d: dict[str, Any]) -> Actor:
    return Actor(
        role=Role(d["role"]),
        merchant=MerchantId(d["merchant"]),
        branch=None if d["branch"] is None else BranchId(d["branch"]),
        shopper=None if d["shopper"] is None else ShopperId(d["shopper"]),
    )


def card_to_dict(card: Card) -> dict[str, Any]:
    return {
        "id": card.id,
        "show": card.show,
        "sku": card.sku,
        "title": card.title,
        "list_price": card.list_price,
        "price": card.price,
        "ends_at_ms": card.ends_at_ms,
        "limit_per_shopper": card.limit_per_shopper,
        "pinned_at_ms": card.pinned_at_ms,
    }


def card_from_dict(d: dict[str, Any]) -> Card:
    return Card(
        id=CardId(d["id"]),
        show=ShowId(d["show"]),
        sku=SkuId(d["sku"]),
        title=d["title"],
        list_price=Amount(d["list_price"]),
        price=Amount(d["price"]),
        ends_at_ms=d["ends_at_ms"],
        limit_per_shopper=d["limit_per_shopper"],
        pinned_at_ms=int(d["pinned_at_ms"]),
    )


def branch_to_dict(branch: Branch) -> dict[str, Any]:
    return {
        "id": branch.id,
        "merchant": branch.merchant,
        "name": branch.name,
        "address": branch.address,
        "lat": branch.lat,
        "lng": branch.lng,
        "is_open": branch.is_open,
    }


def branch_from_dict(d: dict[str, Any]) -> Branch:
    return Branch(
        id=BranchId(d["id"]),
        merchant=MerchantId(d["merchant"]),
        name=d["name"],
        address=d["address"],
        lat=d["lat"],
        lng=d["lng"],
        is_open=bool(d["is_open"]),
    )
