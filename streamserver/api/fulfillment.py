"""A branch's side: its fulfillment queue, acting on orders, its customers and statement.

Every route here is `Access.FRANCHISEE` on `/api/branches/{branch}/…`: the branch's own
franchisee or its merchant's HQ operator; `commerce.access` decides per order.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from commerce import ledger, orders
from commerce.access import Actor, may_act, may_read_order
from commerce.ids import BranchId, MerchantId, OrderId
from commerce.orders import Action, Order, Planned
from commerce.plan import Reason, Refusal
from streamserver.api.orders import apply_transition, now_ms, present_order
from streamserver.auth import ACTOR
from streamserver.badinput import BadInput, read_json_object
from streamserver.keys import STORE
from streamserver.refusals import refusal_response
from streamserver.responses import json_response
from streamserver.store.port import Store

ACTIONS: Final = {
    "ready": Action.MARK_READY,
    "ship": Action.SHIP,
    "deliver": Action.DELIVER,
    "collect": Action.COLLECT,
    "cancel": Action.CANCEL,
    "refund": Action.REFUND,
}


def _caller(request: web.Request) -> Actor:
    actor = request[ACTOR]
    assert actor is not None, "Access.FRANCHISEE sets the actor"
    return actor


def _branch(request: web.Request) -> BranchId:
    return BranchId(request.match_info["branch"])


async def _visible_order(request: web.Request) -> Order:
    actor = _caller(request)
    order = await request.app[STORE].order(actor.merchant, OrderId(request.match_info["order"]))
    branch = _branch(request)
    if (
        order is None
        or not may_read_order(actor, order)
        or branch not in (order.branch, order.ship_from)
    ):
        raise web.HTTPNotFound(text="no such order in this branch")
    return order


async def get_queue(request: web.Request) -> web.Response:
    """Orders waiting for this branch to act, in the order they were accepted."""
    actor, branch = _caller(request), _branch(request)
    store = request.app[STORE]
    entries = await store.queue(actor.merchant, branch)
    queued = []
    for entry in entries:
        order = await store.order(actor.merchant, entry.order)
        if order is not None:
            queued.append({"entry": entry.id, "order": present_order(order, for_shopper=False)})
    return json_response({"queue": queued})


async def get_branch_orders(request: web.Request) -> web.Response:
    actor, branch = _caller(request), _branch(request)
    found = await request.app[STORE].orders(actor.merchant, branch=branch)
    return json_response({"orders": [present_order(o, for_shopper=False) for o in found]})


async def get_branch_order(request: web.Request) -> web.Response:
    return json_response(present_order(await _visible_order(request), for_shopper=False))


async def post_order_action(request: web.Request) -> web.Response:
    action = ACTIONS.get(request.match_info["action"])
    if action is None:
        raise web.HTTPNotFound(text=f"actions are: {', '.join(ACTIONS)}")
    order = await _visible_order(request)
    if not may_act(_caller(request), order, action):
        return refusal_response(Refusal(Reason.FORBIDDEN, detail="another branch fulfils it"))
    return await apply_transition(
        request, order, await _plan(request, order, action), for_shopper=False
    )


async def _plan(request: web.Request, order: Order, action: Action) -> Planned | Refusal:
    now = now_ms()
    match action:
        case Action.MARK_READY:
            return orders.mark_ready(order, now)
        case Action.SHIP:
            return orders.ship(order, now)
        case Action.DELIVER:
            return orders.deliver(order, now)
        case Action.COLLECT:
            return orders.collect(order, now)
        case Action.CANCEL:
            return orders.cancel(order, now)
        case Action.REFUND:
            value = await request.app[STORE].stored_value(order.merchant, order.shopper)
            return orders.refund(order, value.spendable, now)
        case Action.PICK_UP | Action.EXPIRE:
            raise AssertionError("not offered as a plain action")


async def post_pickup(request: web.Request) -> web.Response:
    """Hand over at the counter: the shopper shows the code, the franchisee enters it."""
    actor, branch = _caller(request), _branch(request)
    data = await read_json_object(request)
    code = data.get("code")
    if not isinstance(code, str) or not code.isdigit() or len(code) != 6:
        raise BadInput("code", "the pickup code has 6 digits")
    chosen = data.get("order")  # only needed when two waiting orders share the code
    if chosen is not None and not isinstance(chosen, str):
        raise BadInput("order", "order must be an order id")
    waiting = [
        o
        for o in await request.app[STORE].awaiting_pickup(actor.merchant, branch, code)
        if chosen is None or o.id == chosen
    ]
    if not waiting:
        return refusal_response(Refusal(Reason.WRONG_PICKUP_CODE, field="code"))
    if len(waiting) > 1:  # six digits: rare, but two waiting orders may share a code
        ids = ", ".join(sorted(o.id for o in waiting))
        detail = f"waiting orders {ids} share this code: send the order's id as well"
        return refusal_response(Refusal(Reason.WRONG_PICKUP_CODE, field="order", detail=detail))
    order = waiting[0]
    if not may_act(actor, order, Action.PICK_UP):
        return refusal_response(Refusal(Reason.FORBIDDEN))
    return await apply_transition(
        request, order, orders.pick_up(order, code, now_ms()), for_shopper=False
    )


async def customers_of(
    store: Store, merchant: MerchantId, branch: BranchId
) -> list[dict[str, Any]]:
    return [
        {
            "shopper": c.shopper,
            "name": await store.shopper_name(merchant, c.shopper),
            "since_ms": c.since_ms,
        }
        for c in await store.customers(merchant, branch)
    ]


async def get_customers(request: web.Request) -> web.Response:
    actor, branch = _caller(request), _branch(request)
    customers = await customers_of(request.app[STORE], actor.merchant, branch)
    return json_response({"customers": customers})


def period(request: web.Request) -> tuple[int, int]:
    try:
        start = int(request.query.get("from", "0"))
        end = int(request.query.get("to", str(2**62)))
    except ValueError:
        raise BadInput("from", "from and to are times in ms since the epoch") from None
    if start < 0 or end < start:
        raise BadInput("to", "to must not be before from")
    return start, end


def present_statement(s: ledger.Statement) -> dict[str, int | str]:
    return {
        "branch": s.branch,
        "sales": s.sales,
        "commission": s.commission,
        "cashback_cost": s.cashback_cost,
        "net": s.net,
        "stored_value_spent": s.stored_value_spent,
        "cash_collected": s.cash_collected,
        "hq_owes_branch": s.hq_owes_branch,
        "branch_owes_hq": s.branch_owes_hq,
    }


async def statement_of(
    request: web.Request, merchant: MerchantId, branch: BranchId
) -> dict[str, int | str]:
    start, end = period(request)
    transfers = await request.app[STORE].transfers(merchant, start, end)
    return present_statement(ledger.statement(branch, transfers))


async def get_statement(request: web.Request) -> web.Response:
    actor = _caller(request)
    return json_response(await statement_of(request, actor.merchant, _branch(request)))
