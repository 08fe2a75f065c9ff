"""A shopper's orders: buy in a branch room, see my orders and my stored value, cancel.

The handler parses, reads the view the core needs, asks the core for a plan and hands
it to the store; no business rule lives here (STYLE.md "How a request flows").
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Final

import orjson
from aiohttp import web

from commerce import orders
from commerce.access import Actor, Role, may_act
from commerce.fulfillment import Coordinates
from commerce.ids import Amount, MerchantId, OrderId, SkuId
from commerce.orders import Action, FulfillmentKind, Order, PlaceOrder, Planned
from commerce.plan import KeyUnseen, Plan, Reason, Refusal
from commerce.shows import ShowStatus
from streamserver.api.lookup import find_room_branch, find_show
from streamserver.auth import ACTOR
from streamserver.badinput import BadInput, choice_field, coordinate_field, read_json_object
from streamserver.effects import after_apply
from streamserver.ids import new_order_id, pickup_code
from streamserver.keys import STORE
from streamserver.refusals import refusal_response
from streamserver.responses import json_response
from streamserver.store.port import Applied, Replayed

KEY_LENGTH_MAX: Final = 100
ADDRESS_LENGTH_MAX: Final = 300


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def present_order(order: Order, *, for_shopper: bool) -> dict[str, Any]:
    """An order as JSON. Only its shopper sees the pickup code (the counter checks it)."""
    return {
        "id": order.id,
        "branch": order.branch,
        "ship_from": order.ship_from,
        "shopper": order.shopper,
        "lines": [
            {"sku": line.sku, "qty": line.qty, "unit_price": line.unit_price}
            for line in order.lines
        ],
        "fulfillment": order.fulfillment,
        "state": order.state,
        "total": order.total,
        "stored_value": order.stored_value_part,
        "cash_due": order.cash_part if order.state in orders.OPEN_STATES else 0,
        "cashback": order.cashback,
        "pickup_code": order.pickup_code if for_shopper else None,
        "expires_at_ms": order.expires_at_ms,
        "placed_at_ms": order.placed_at_ms,
        "updated_at_ms": order.updated_at_ms,
        "address": order.address,
    }


def shopper_of(request: web.Request) -> Actor:
    actor = request[ACTOR]
    if actor is None or actor.role is not Role.SHOPPER or actor.shopper is None:
        raise BadInput("Authorization", "sign in as a shopper first", status=401)
    return actor


async def post_order(request: web.Request) -> web.Response:
    """Buy in a branch room. The order belongs to the room's branch (DESIGN.md)."""
    actor = shopper_of(request)
    assert actor.shopper is not None
    show = await find_show(request)
    branch = await find_room_branch(request, show)
    if show.status is ShowStatus.ENDED:
        raise web.HTTPGone(text="the show has ended")
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key or len(key) > KEY_LENGTH_MAX:
        raise BadInput(
            "Idempotency-Key", f"send an Idempotency-Key of 1-{KEY_LENGTH_MAX} characters"
        )
    data = await read_json_object(request)
    cmd = PlaceOrder(
        order=OrderId(new_order_id()),
        merchant=show.merchant,
        branch=branch.id,
        shopper=actor.shopper,
        lines=_lines(data),
        fulfillment=choice_field(data, "fulfillment", FulfillmentKind),
        stored_value=_stored_value(data),
        key=key,
        body_digest=_digest(data, branch.id),
        pickup_code=pickup_code(),
        destination=_destination(data),
        address=_address(data),
    )
    store = request.app[STORE]
    skus = [sku for sku, _ in cmd.lines]
    for attempt in range(2):  # a stale view may have chosen a branch that sold out: re-plan once
        view = await store.ordering_view(show.merchant, branch.id, actor.shopper, skus)
        assert view is not None, "the room's branch exists"
        planned = orders.place_order(cmd, view, now_ms())
        if isinstance(planned, Refusal):
            return await _refused_unless_replay(request, show.merchant, cmd, planned)
        result = await store.apply(show.merchant, planned.plan)
        if isinstance(result, Replayed):
            return await _replay(request, show.merchant, result.order)
        if isinstance(result, Applied):
            await after_apply(request.app, planned.order, result)
            return json_response(present_order(planned.order, for_shopper=True), status=201)
        retry = result.reason is Reason.SOLD_OUT and cmd.fulfillment is FulfillmentKind.DELIVERY
        if not (retry and attempt == 0):
            return refusal_response(result)
    raise AssertionError("unreachable")


async def _refused_unless_replay(
    request: web.Request, merchant: MerchantId, cmd: PlaceOrder, refusal: Refusal
) -> web.Response:
    """The key decides first: a retry of an accepted order gets that order back even if
    the view now refuses (the last unit went to this very order)."""
    probe = Plan((KeyUnseen(cmd.shopper, cmd.key, cmd.body_digest),), ())
    result = await request.app[STORE].apply(merchant, probe)
    if isinstance(result, Replayed):
        return await _replay(request, merchant, result.order)
    if isinstance(result, Refusal):
        return refusal_response(result)
    return refusal_response(refusal)


async def _replay(request: web.Request, merchant: MerchantId, order_id: OrderId) -> web.Response:
    order = await request.app[STORE].order(merchant, order_id)
    assert order is not None, "a remembered key names a stored order"
    response = json_response(present_order(order, for_shopper=True), status=201)
    response.headers["Idempotent-Replayed"] = "true"
    return response


async def get_my_orders(request: web.Request) -> web.Response:
    actor = shopper_of(request)
    mine = await request.app[STORE].orders(actor.merchant, shopper=actor.shopper)
    return json_response({"orders": [present_order(o, for_shopper=True) for o in mine]})


async def get_my_balance(request: web.Request) -> web.Response:
    actor = shopper_of(request)
    assert actor.shopper is not None
    value = await request.app[STORE].stored_value(actor.merchant, actor.shopper)
    return json_response(
        {"balance": value.balance, "held": value.held, "spendable": value.spendable}
    )


async def post_my_order_cancel(request: web.Request) -> web.Response:
    actor = shopper_of(request)
    order = await request.app[STORE].order(actor.merchant, OrderId(request.match_info["order"]))
    if order is None or order.shopper != actor.shopper:
        raise web.HTTPNotFound(text="no such order")
    if not may_act(actor, order, Action.CANCEL):
        return refusal_response(
            Refusal(Reason.NOT_ALLOWED_IN_STATE, detail="the store is already preparing it")
        )
    return await apply_transition(request, order, orders.cancel(order, now_ms()), for_shopper=True)


async def apply_transition(
    request: web.Request, order: Order, planned: Planned | Refusal, *, for_shopper: bool
) -> web.Response:
    if isinstance(planned, Refusal):
        return refusal_response(planned)
    result = await request.app[STORE].apply(order.merchant, planned.plan)
    if isinstance(result, Refusal):
        return refusal_response(result)
    assert isinstance(result, Applied), "only placing can replay"
    await after_apply(request.app, planned.order, result)
    return json_response(present_order(planned.order, for_shopper=for_shopper))


# -- parsing --------------------------------------------------------------------------


def _lines(data: dict[str, Any]) -> tuple[tuple[SkuId, int], ...]:
    raw = data.get("lines")
    if not isinstance(raw, list) or not 1 <= len(raw) <= orders.LINES_MAX:
        raise BadInput("lines", f"lines must be a list of 1-{orders.LINES_MAX} items")
    lines: list[tuple[SkuId, int]] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise BadInput(f"lines[{i}]", "each line is an object with sku and qty")
        sku, qty = item.get("sku"), item.get("qty")
        if not isinstance(sku, str) or not sku or len(sku) > 64:
            raise BadInput(f"lines[{i}].sku", "sku must be a product id")
        if isinstance(qty, bool) or not isinstance(qty, int) or not 1 <= qty <= orders.QTY_MAX:
            raise BadInput(
                f"lines[{i}].qty", f"qty must be a whole number from 1 to {orders.QTY_MAX}"
            )
        if any(sku == seen for seen, _ in lines):
            raise BadInput(f"lines[{i}].sku", "each sku may appear once")
        lines.append((SkuId(sku), qty))
    return tuple(lines)


def _stored_value(data: dict[str, Any]) -> Amount:
    value = data.get("stored_value", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadInput("stored_value", "stored_value must be a whole amount in minor units, >= 0")
    return Amount(value)


def _destination(data: dict[str, Any]) -> Coordinates | None:
    if data.get("fulfillment") != FulfillmentKind.DELIVERY:
        return None
    raw = data.get("destination")
    if not isinstance(raw, dict):
        raise BadInput("destination", "delivery needs destination {lat, lng}")
    lat = coordinate_field(raw, "lat", bound=90)
    lng = coordinate_field(raw, "lng", bound=180)
    if lat is None or lng is None:
        raise BadInput("destination", "delivery needs destination {lat, lng}")
    return Coordinates(lat, lng)


def _address(data: dict[str, Any]) -> str:
    value = data.get("address", "")
    if not isinstance(value, str) or len(value) > ADDRESS_LENGTH_MAX:
        raise BadInput(
            "address", f"address must be text of at most {ADDRESS_LENGTH_MAX} characters"
        )
    return value.strip()


def _digest(data: dict[str, Any], branch: str) -> str:
    """What makes two requests "the same body" for idempotency: the body and the room."""
    canonical = orjson.dumps([branch, data], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()
