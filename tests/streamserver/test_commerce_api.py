"""Buying in a branch room and fulfilling it, through the real HTTP API on SQLite."""

from __future__ import annotations

import asyncio

import pytest

from tests.commerce_api import PLACES, Shop, buying, call, new_shopper, ok, open_shop
from tests.conftest import Seeded, Server


@pytest.fixture
async def shop(server: Server, seeded: Seeded) -> Shop:
    return await open_shop(server, seeded)


async def test_a_pickup_order_belongs_to_its_room_from_queue_to_statement(
    server: Server, shop: Shop
) -> None:
    a, b = shop.seeded.branches
    mei = await new_shopper(server, shop)
    order = await ok(
        server,
        "POST",
        shop.room_orders(0),
        {"lines": [{"sku": shop.sku, "qty": 2}], "fulfillment": "pickup"},
        buying(mei),
    )
    assert (order["branch"], order["ship_from"], order["state"]) == (a, a, "placed")
    assert order["total"] == 2 * shop.price
    assert len(order["pickup_code"]) == 6

    queue_a = await ok(server, "GET", f"/api/branches/{a}/queue", headers=shop.franchisee[0])
    assert [e["order"]["id"] for e in queue_a["queue"]] == [order["id"]]
    assert queue_a["queue"][0]["order"]["pickup_code"] is None  # the counter must ask for it
    queue_b = await ok(server, "GET", f"/api/branches/{b}/queue", headers=shop.franchisee[1])
    assert queue_b["queue"] == []
    status, _ = await call(
        server, "GET", f"/api/branches/{a}/orders/{order['id']}", headers=shop.franchisee[1]
    )
    assert status == 401  # another branch's franchisee is not admitted to branch a's routes

    ready = await ok(
        server, "POST", f"/api/branches/{a}/orders/{order['id']}/ready", headers=shop.franchisee[0]
    )
    assert ready["state"] == "ready"
    assert (await ok(server, "GET", f"/api/branches/{a}/queue", headers=shop.franchisee[0]))[
        "queue"
    ] == []
    status, wrong = await call(
        server,
        "POST",
        f"/api/branches/{a}/pickups",
        {"code": "000000" if order["pickup_code"] != "000000" else "111111"},
        shop.franchisee[0],
    )
    assert (status, wrong["error"], wrong["field"]) == (400, "wrong_pickup_code", "code")
    picked = await ok(
        server,
        "POST",
        f"/api/branches/{a}/pickups",
        {"code": order["pickup_code"]},
        shop.franchisee[0],
    )
    assert (picked["state"], picked["cash_due"]) == ("picked_up", 2 * shop.price)
    done = await ok(
        server,
        "POST",
        f"/api/branches/{a}/orders/{order['id']}/collect",
        headers=shop.franchisee[0],
    )
    assert done["state"] == "completed"
    cashback = (2 * shop.price * 500 + 5000) // 10000
    assert done["cashback"] == cashback
    assert (await ok(server, "GET", "/api/me/balance", headers=mei))["balance"] == cashback

    statement = await ok(server, "GET", f"/api/branches/{a}/statement", headers=shop.franchisee[0])
    commission = (2 * shop.price * 1000 + 5000) // 10000
    assert statement["sales"] == 2 * shop.price
    assert statement["commission"] == commission
    assert statement["net"] == 2 * shop.price - commission
    assert statement["cash_collected"] == 2 * shop.price
    assert (await ok(server, "GET", f"/api/branches/{b}/statement", headers=shop.franchisee[1]))[
        "sales"
    ] == 0
    customers = await ok(server, "GET", f"/api/branches/{a}/customers", headers=shop.franchisee[0])
    assert [c["name"] for c in customers["customers"]] == ["Mei"]
    assert (await ok(server, "GET", f"/api/branches/{b}/customers", headers=shop.franchisee[1]))[
        "customers"
    ] == []
    sales = await ok(
        server, "GET", f"/api/merchants/{shop.seeded.merchant}/sales", headers=shop.operator
    )
    assert [row["branch"] for row in sales["branches"]] == [a, b]
    assert sales["totals"]["sales"] == 2 * shop.price


async def test_delivery_ships_from_the_nearest_branch_with_stock_and_the_sale_stays(
    server: Server, seeded: Seeded
) -> None:
    shop = await open_shop(server, seeded, stock=(0, 5))  # only Pudong holds it
    a, b = seeded.branches
    mei = await new_shopper(server, shop)
    body = {
        "lines": [{"sku": shop.sku, "qty": 1}],
        "fulfillment": "delivery",
        "destination": {"lat": PLACES[0][0], "lng": PLACES[0][1]},
        "address": "1 Nanjing Rd",
    }
    order = await ok(server, "POST", shop.room_orders(0), body, buying(mei))
    assert (order["branch"], order["ship_from"]) == (a, b)
    assert [
        e["order"]["id"]
        for e in (await ok(server, "GET", f"/api/branches/{b}/queue", headers=shop.franchisee[1]))[
            "queue"
        ]
    ] == [order["id"]]
    for action, state in (("ship", "shipped"), ("deliver", "delivered"), ("collect", "completed")):
        status, moved = await call(
            server,
            "POST",
            f"/api/branches/{a}/orders/{order['id']}/{action}",
            headers=shop.franchisee[0],
        )
        assert (status, moved["error"]) == (403, "forbidden")  # the seller does not fulfil it
        moved = await ok(
            server,
            "POST",
            f"/api/branches/{b}/orders/{order['id']}/{action}",
            headers=shop.franchisee[1],
        )
        assert moved["state"] == state
    assert (await ok(server, "GET", f"/api/branches/{a}/statement", headers=shop.franchisee[0]))[
        "sales"
    ] == shop.price
    statement_b = await ok(
        server, "GET", f"/api/branches/{b}/statement", headers=shop.franchisee[1]
    )
    assert (statement_b["sales"], statement_b["cash_collected"]) == (0, shop.price)
    body["lines"] = [{"sku": shop.sku, "qty": 9}]
    status, refused = await call(server, "POST", shop.room_orders(0), body, buying(mei))
    assert (status, refused["error"]) == (409, "no_branch_can_ship")


async def test_the_same_key_and_body_is_the_same_order_and_another_body_is_a_409(
    server: Server, shop: Shop
) -> None:
    mei = await new_shopper(server, shop)
    body = {"lines": [{"sku": shop.sku, "qty": 10}], "fulfillment": "pickup"}
    first = await ok(server, "POST", shop.room_orders(0), body, buying(mei, "tap-1"))
    # The last unit went to that very order: the retry still gets it back.
    again = await ok(server, "POST", shop.room_orders(0), body, buying(mei, "tap-1"))
    assert again["id"] == first["id"]
    body["lines"][0]["qty"] = 1
    status, refused = await call(server, "POST", shop.room_orders(0), body, buying(mei, "tap-1"))
    assert (status, refused["error"]) == (409, "key_reused")
    status, sold_out = await call(server, "POST", shop.room_orders(0), body, buying(mei, "tap-2"))
    assert (status, sold_out["error"]) == (409, "sold_out")
    # The key is the shopper's own: another shopper's "tap-1" is a new order elsewhere.
    status, _ = await call(
        server, "POST", shop.room_orders(1), body, buying(await new_shopper(server, shop), "tap-1")
    )
    assert status == 201


async def test_stored_value_is_held_spent_and_released(server: Server, shop: Shop) -> None:
    mei = await new_shopper(server, shop)
    me = await ok(server, "GET", "/api/sessions/me", headers=mei)
    m = f"/api/merchants/{shop.seeded.merchant}"
    await ok(
        server, "POST", f"{m}/shoppers/{me['shopper']}/top-ups", {"amount": 3000}, shop.operator
    )
    body = {"lines": [{"sku": shop.sku, "qty": 1}], "fulfillment": "pickup", "stored_value": 1500}
    order = await ok(server, "POST", shop.room_orders(0), body, buying(mei))
    assert (order["stored_value"], order["cash_due"]) == (1500, shop.price - 1500)
    assert await ok(server, "GET", "/api/me/balance", headers=mei) == {
        "balance": 3000,
        "held": 1500,
        "spendable": 1500,
    }
    status, refused = await call(
        server, "POST", shop.room_orders(0), {**body, "stored_value": 1501}, buying(mei)
    )
    assert (status, refused["error"]) == (409, "insufficient_balance")
    cancelled = await ok(server, "POST", f"/api/me/orders/{order['id']}/cancel", headers=mei)
    assert cancelled["state"] == "cancelled"
    assert await ok(server, "GET", "/api/me/balance", headers=mei) == {
        "balance": 3000,
        "held": 0,
        "spendable": 3000,
    }
    stock = await ok(server, "GET", f"{m}/stock", headers=shop.operator)
    assert {(s["branch"], s["available"]) for s in stock["stock"]} == {
        (b, 10) for b in shop.seeded.branches
    }


async def test_a_flash_price_with_a_limit_per_shopper(server: Server, shop: Shop) -> None:
    m = f"/api/merchants/{shop.seeded.merchant}"
    await ok(
        server,
        "PUT",
        f"{m}/offers/{shop.sku}",
        {"price": 999, "limit_per_shopper": 2},
        shop.operator,
    )
    mei = await new_shopper(server, shop)
    body = {"lines": [{"sku": shop.sku, "qty": 2}], "fulfillment": "pickup"}
    order = await ok(server, "POST", shop.room_orders(0), body, buying(mei))
    assert order["total"] == 2 * 999
    status, refused = await call(
        server,
        "POST",
        shop.room_orders(0),
        {**body, "lines": [{"sku": shop.sku, "qty": 1}]},
        buying(mei),
    )
    assert (status, refused["error"], refused["field"]) == (409, "over_limit", "lines[0].qty")
    await ok(
        server, "PUT", f"{m}/offers/{shop.sku}", {"price": 999, "ends_at_ms": 1}, shop.operator
    )
    status, ended = await call(
        server, "POST", shop.room_orders(0), body, buying(await new_shopper(server, shop))
    )
    assert (status, ended["error"]) == (409, "flash_ended")


BAD_ORDERS = [
    ({}, "lines"),
    ({"lines": []}, "lines"),
    ({"lines": "tea"}, "lines"),
    ({"lines": [7]}, "lines[0]"),
    ({"lines": [{"sku": 5, "qty": 1}]}, "lines[0].sku"),
    ({"lines": [{"sku": "k_x", "qty": 0}]}, "lines[0].qty"),
    ({"lines": [{"sku": "k_x", "qty": -3}]}, "lines[0].qty"),
    ({"lines": [{"sku": "k_x", "qty": 1.5}]}, "lines[0].qty"),
    ({"lines": [{"sku": "k_x", "qty": True}]}, "lines[0].qty"),
    ({"lines": [{"sku": "k_x", "qty": 1}, {"sku": "k_x", "qty": 1}]}, "lines[1].sku"),
    ({"lines": [{"sku": "k_x", "qty": 1}], "fulfillment": "drone"}, "fulfillment"),
    ({"lines": [{"sku": "k_x", "qty": 1}], "fulfillment": ["pickup"]}, "fulfillment"),
    ({"lines": [{"sku": "k_x", "qty": 1}], "fulfillment": {"kind": "pickup"}}, "fulfillment"),
    ({"lines": [{"sku": "k_x", "qty": 1}], "fulfillment": "delivery"}, "destination"),
    (
        {
            "lines": [{"sku": "k_x", "qty": 1}],
            "fulfillment": "delivery",
            "destination": {"lat": 91, "lng": 0},
        },
        "lat",
    ),
    (
        {"lines": [{"sku": "k_x", "qty": 1}], "fulfillment": "pickup", "stored_value": -1},
        "stored_value",
    ),
    ({"lines": [{"sku": "k_nosuch", "qty": 1}], "fulfillment": "pickup"}, "lines[0].sku"),
]


@pytest.mark.parametrize(("body", "field"), BAD_ORDERS)
async def test_bad_orders_are_refused_naming_the_field(
    server: Server, shop: Shop, body: dict[str, object], field: str
) -> None:
    mei = await new_shopper(server, shop)
    status, refused = await call(server, "POST", shop.room_orders(0), body, buying(mei))
    assert status == 400, refused
    assert refused["field"] == field


BAD_TERMS = [
    ({"commission_rate_bp": -1}, "commission_rate_bp"),
    ({"commission_rate_bp": 10_001}, "commission_rate_bp"),
    ({"commission_rate_bp": 1000, "cashback_funder": "franchisor"}, "cashback_funder"),
    ({"commission_rate_bp": 1000, "cashback_funder": ["hq"]}, "cashback_funder"),
    ({"commission_rate_bp": 1000, "pickup_hold_s": 5}, "pickup_hold_s"),
]


@pytest.mark.parametrize(("body", "field"), BAD_TERMS)
async def test_bad_terms_are_refused_naming_the_field_and_change_nothing(
    server: Server, shop: Shop, body: dict[str, object], field: str
) -> None:
    terms = f"/api/merchants/{shop.seeded.merchant}/terms"
    before = await ok(server, "GET", terms, headers=shop.operator)
    status, refused = await call(server, "PUT", terms, body, shop.operator)
    assert (status, refused["field"]) == (400, field), refused
    assert await ok(server, "GET", terms, headers=shop.operator) == before


async def test_an_order_needs_an_idempotency_key_and_a_shopper(server: Server, shop: Shop) -> None:
    mei = await new_shopper(server, shop)
    body = {"lines": [{"sku": shop.sku, "qty": 1}], "fulfillment": "pickup"}
    status, refused = await call(server, "POST", shop.room_orders(0), body, mei)
    assert (status, refused["field"]) == (400, "Idempotency-Key")
    status, _ = await call(server, "POST", shop.room_orders(0), body, buying(shop.franchisee[0]))
    assert status == 401


async def test_a_thousand_shoppers_race_for_ten_units(server: Server, seeded: Seeded) -> None:
    shop = await open_shop(server, seeded, stock=(10, 0))
    shoppers = await asyncio.gather(*(new_shopper(server, shop) for _ in range(50)))
    body = {"lines": [{"sku": shop.sku, "qty": 1}], "fulfillment": "pickup"}
    results = await asyncio.gather(
        *(
            call(server, "POST", shop.room_orders(0), body, buying(shoppers[i % 50]))
            for i in range(1000)
        )
    )
    statuses = [status for status, _ in results]
    assert statuses.count(201) == 10
    assert statuses.count(409) == 990
    stock = await ok(
        server, "GET", f"/api/merchants/{seeded.merchant}/stock", headers=shop.operator
    )
    level = next(s for s in stock["stock"] if s["branch"] == seeded.branches[0])
    assert (level["available"], level["reserved"], level["received"]) == (0, 10, 10)


async def test_signing_out_ends_the_session_at_once(server: Server, shop: Shop) -> None:
    mei = await new_shopper(server, shop)
    assert (await call(server, "GET", "/api/me/orders", headers=mei))[0] == 200
    await ok(server, "DELETE", "/api/sessions/me", headers=mei)
    status, _ = await call(server, "GET", "/api/me/orders", headers=mei)
    assert status == 401  # even though this node had just looked the session up


async def test_the_first_buyer_of_a_flash_sale_still_picks_up_by_code(
    server: Server, seeded: Seeded
) -> None:
    """The counter finds a waiting order by its code however many orders came since."""
    shop = await open_shop(server, seeded, stock=(1200, 0))
    a = seeded.branches[0]
    body = {"lines": [{"sku": shop.sku, "qty": 1}], "fulfillment": "pickup"}
    buyers = [await new_shopper(server, shop, f"S{i}") for i in range(50)]
    first = await ok(server, "POST", shop.room_orders(0), body, buying(buyers[0]))
    for _ in range(21):  # 1,050 newer orders
        await asyncio.gather(
            *(ok(server, "POST", shop.room_orders(0), body, buying(b)) for b in buyers)
        )
    picked = await ok(
        server,
        "POST",
        f"/api/branches/{a}/pickups",
        {"code": first["pickup_code"]},
        shop.franchisee[0],
    )
    assert (picked["id"], picked["state"]) == (first["id"], "picked_up")


async def test_two_waiting_orders_with_one_code_are_told_apart_by_id(
    server: Server, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("streamserver.api.orders.pickup_code", lambda: "424242")
    a = shop.seeded.branches[0]
    body = {"lines": [{"sku": shop.sku, "qty": 1}], "fulfillment": "pickup"}
    mei, lin = await new_shopper(server, shop, "Mei"), await new_shopper(server, shop, "Lin")
    hers = await ok(server, "POST", shop.room_orders(0), body, buying(mei))
    his = await ok(server, "POST", shop.room_orders(0), body, buying(lin))
    pickups = f"/api/branches/{a}/pickups"
    status, both = await call(server, "POST", pickups, {"code": "424242"}, shop.franchisee[0])
    assert (status, both["error"], both["field"]) == (400, "wrong_pickup_code", "order")
    assert hers["id"] in both["message"]
    assert his["id"] in both["message"]
    picked = await ok(
        server, "POST", pickups, {"code": "424242", "order": his["id"]}, shop.franchisee[0]
    )
    assert (picked["id"], picked["state"]) == (his["id"], "picked_up")
    # Now only hers waits under that code: the code alone finds it.
    picked = await ok(server, "POST", pickups, {"code": "424242"}, shop.franchisee[0])
    assert picked["id"] == hers["id"]
    status, _ = await call(server, "POST", pickups, {"code": "424242"}, shop.franchisee[0])
    assert status == 400
