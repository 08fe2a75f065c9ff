"""Live product cards in real browsers: the host pins a product from the host page, every
branch room shows it with its own stock, shoppers buy through the watch page, the stock
follows live and the order lands in its own branch's fulfillment queue.

Every wait has a deadline and waits on the page's own state (DOM text, `window.lianbo`),
never on a sleep. The server coalesces stock updates to a few per second.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import msgpack
from playwright.async_api import Locator, Page, expect

from streamserver.keys import HUB
from tests.commerce_api import Shop, buying, new_shopper, ok, open_shop

if TYPE_CHECKING:
    from tests.conftest import Seeded, Server
    from tests.e2e.conftest import OpenPage

WAIT_MS = 15_000
PICKUP_CODE = re.compile(r"^\d{6}$")
COUNTDOWN = re.compile(r"Ends in (30|2\d):\d\d")


async def wait_for(page: Page, predicate: str, arg: Any = None) -> None:
    """Wait until the JS `predicate` holds, checked every 50 ms."""
    await page.wait_for_function(predicate, arg=arg, polling=50, timeout=WAIT_MS)


def card(page: Page) -> Locator:
    """The one product card in the room's list (the spotlight over the video is a copy)."""
    return page.locator("#cards .card")


async def open_room(open_page: OpenPage, seeded: Seeded, branch: str) -> Page:
    """A watch page whose room socket has had its first frame (the snapshot)."""
    page = await open_page(f"/shows/{seeded.show}/rooms/{branch}")
    await wait_for(page, "() => window.lianbo.socket === 'open' && window.lianbo.seq !== null")
    return page


async def open_host(open_page: OpenPage, seeded: Seeded, shop: Shop) -> Page:
    host = await open_page(f"/shows/{seeded.show}/host#token={seeded.host_token}")
    await expect(host.locator(f'#pin-sku option[value="{shop.sku}"]')).to_be_attached()
    return host


async def pin(host: Page, shop: Shop, **fields: str) -> Locator:
    """Pin the shop's product through the host page's form; returns its pinned row."""
    await host.get_by_label("Product", exact=True).select_option(shop.sku)
    labels = {
        "title": "Card title",
        "price": "Flash price (¥)",
        "minutes": "Ends in (min)",
        "limit": "Limit per shopper",
    }
    for name, value in fields.items():
        await host.get_by_label(labels[name]).fill(value)
    await host.get_by_role("button", name="Pin card").click()
    await expect(host.locator("#pin-message")).to_contain_text("Pinned")
    row = host.locator("#pinned .pinned-card")
    await expect(row).to_have_count(1)
    return row


async def stock_text(page: Page) -> str:
    return await card(page).locator(".card-stock").inner_text()


async def test_branch_rooms_show_their_own_stock_and_a_pickup_lands_in_its_branch(
    server: Server, seeded: Seeded, open_page: OpenPage
) -> None:
    shop = await open_shop(server, seeded, stock=(10, 7))
    xuhui, pudong = seeded.branches
    host = await open_host(open_page, seeded, shop)
    # Two rooms are open when the card is pinned (it arrives live); one opens after
    # (it comes in the snapshot).
    a1 = await open_room(open_page, seeded, xuhui)
    b1 = await open_room(open_page, seeded, pudong)
    await expect(card(a1)).to_have_count(0)

    pinned = await pin(
        host, shop, title="Osmanthus oolong 250 g", price="9.90", minutes="30", limit="5"
    )
    await expect(pinned.locator(".pinned-price")).to_have_text("¥9.90 ¥19.99")
    await expect(pinned.locator(".pinned-stock")).to_have_text("17 left in all stores")
    a2 = await open_room(open_page, seeded, xuhui)

    for page, left in ((a1, 10), (a2, 10), (b1, 7)):
        shown = card(page)
        await expect(shown).to_have_count(1)
        await expect(shown.locator(".card-title")).to_have_text("Osmanthus oolong 250 g")
        await expect(shown.locator(".card-stock")).to_have_text(f"{left} left here")
        await expect(shown.locator(".price-now")).to_have_text("¥9.90")
        await expect(shown.locator(".price-list")).to_have_text("¥19.99")
        await expect(shown.locator(".card-limit")).to_have_text("Limit 5 per person")
        await expect(shown.locator(".card-timer")).to_contain_text(COUNTDOWN)
        await expect(shown.get_by_role("button", name="Buy")).to_be_enabled()
        # The newest card is also over the video.
        await expect(page.locator("#spotlight .card-title")).to_have_text("Osmanthus oolong 250 g")

    # A shopper in Xuhui buys one for pickup: the sheet signs them up as a guest.
    await card(a1).get_by_role("button", name="Buy").click()
    sheet = a1.locator("#buy-sheet")
    await expect(sheet).to_be_visible()
    await sheet.get_by_label("Your name").fill("Mei")
    await expect(sheet.get_by_label("Quantity")).to_have_value("1")
    await expect(sheet.get_by_role("radio", name=re.compile("^Pick up at Xuhui"))).to_be_checked()
    await expect(sheet.locator("#buy-total")).to_have_text("¥9.90")
    await sheet.get_by_role("button", name="Place order").click()

    code = sheet.locator("#pickup-code")
    await expect(code).to_have_text(PICKUP_CODE)
    pickup_code = await code.inner_text()
    await expect(sheet.locator("#done-branch")).to_have_text("Xuhui")
    await expect(sheet.locator("#cash-due")).to_have_text("¥9.90")
    await expect(sheet.locator("#done-balance")).to_have_text("¥0.00")
    assert await a1.evaluate("() => window.lianbo.shopper") is not None

    # The stock follows on both Xuhui pages; Pudong keeps its own 7 (checked once it has
    # applied the same stock event: same show, same sequence number).
    for page in (a1, a2):
        await expect(card(page).locator(".card-stock")).to_have_text("9 left here")
    seq = await a2.evaluate("() => window.lianbo.seq")
    await wait_for(b1, "(seq) => window.lianbo.seq >= seq", seq)
    assert await stock_text(b1) == "7 left here"
    await expect(pinned.locator(".pinned-stock")).to_have_text("16 left in all stores")

    # "My orders" lists it; the order is in Xuhui's fulfillment queue, not in Pudong's.
    await sheet.get_by_role("button", name="Done").click()
    await expect(sheet).to_be_hidden()
    mine = a1.locator("#orders .order")
    await expect(mine).to_have_count(1)
    await expect(mine.locator(".order-state")).to_have_text("Order placed")
    await expect(mine.locator(".order-code")).to_have_text(f"Pickup code {pickup_code}")
    order_id = await mine.get_attribute("data-order")
    queue_a = await ok(server, "GET", f"/api/branches/{xuhui}/queue", headers=shop.franchisee[0])
    assert [entry["order"]["id"] for entry in queue_a["queue"]] == [order_id]
    assert queue_a["queue"][0]["order"]["branch"] == xuhui
    queue_b = await ok(server, "GET", f"/api/branches/{pudong}/queue", headers=shop.franchisee[1])
    assert queue_b["queue"] == []

    # The store packs it: the shopper's own socket (it reconnected with the new session
    # cookie) brings the change to "My orders" live.
    await ok(
        server, "POST", f"/api/branches/{xuhui}/orders/{order_id}/ready", {}, shop.franchisee[0]
    )
    await expect(mine.locator(".order-state")).to_have_text("Ready for pickup")
    await expect(a2.locator("#my-orders")).to_be_hidden()  # another person's page


async def test_sold_out_here_then_delivery_and_the_hosts_price_and_unpin(
    server: Server, seeded: Seeded, open_page: OpenPage
) -> None:
    shop = await open_shop(server, seeded, stock=(10, 7))
    xuhui, pudong = seeded.branches
    host = await open_host(open_page, seeded, shop)
    pinned = await pin(host, shop, limit="5")  # at the list price, no end
    a = await open_room(open_page, seeded, xuhui)
    b = await open_room(open_page, seeded, pudong)
    await expect(card(b).locator(".card-stock")).to_have_text("7 left here")
    await expect(card(b).locator(".price-now")).to_have_text("¥19.99")
    await expect(card(b).locator(".price-list")).to_be_hidden()
    await expect(card(b).locator(".card-timer")).to_be_hidden()

    # A shopper in Pudong opens the sheet for pickup; meanwhile others buy Pudong's last 7.
    await card(b).get_by_role("button", name="Buy").click()
    sheet = b.locator("#buy-sheet")
    await sheet.get_by_label("Your name").fill("Lei")
    await expect(sheet.get_by_role("radio", name=re.compile("^Pick up at Pudong"))).to_be_checked()
    for n, qty in enumerate((5, 2)):
        rival = await new_shopper(server, shop, f"Rival {n}")
        body = {"lines": [{"sku": shop.sku, "qty": qty}], "fulfillment": "pickup"}
        await ok(server, "POST", shop.room_orders(1), body, buying(rival))
    await expect(card(b).locator(".card-stock")).to_have_text("Sold out here · delivery available")
    await expect(card(b).get_by_role("button")).to_have_text("Buy for delivery")
    await expect(card(a).locator(".card-stock")).to_have_text("10 left here")

    await sheet.get_by_role("button", name="Place order").click()
    await expect(sheet.get_by_role("alert")).to_contain_text("Sold out at this store")
    await expect(sheet.locator("#buy-done")).to_be_hidden()

    # The same tap, retried with delivery: shipped from Xuhui, the nearest store with stock.
    await sheet.get_by_role("radio", name=re.compile("^Delivery")).check()
    await expect(sheet.get_by_label("Latitude")).to_have_value("31.2215")  # Pudong's own
    await sheet.get_by_label("Delivery address").fill("88 Century Ave")
    await sheet.get_by_role("button", name="Place order").click()
    await expect(sheet.locator("#ship-from")).to_have_text("Xuhui")
    await expect(sheet.locator("#done-ship")).to_contain_text("to 88 Century Ave")
    await expect(sheet.locator("#cash-due")).to_have_text("¥19.99")
    await expect(card(a).locator(".card-stock")).to_have_text("9 left here")
    await expect(card(b).locator(".card-stock")).to_have_text("Sold out here · delivery available")
    await sheet.get_by_role("button", name="Done").click()
    await expect(b.locator("#orders .order .order-meta").first).to_contain_text(
        "Delivery from Xuhui"
    )

    # The sockets drop (a server restart says goodbye): the pages reconnect by themselves
    # with their last sequence number and keep following the host.
    await server.app[HUB].close_sockets()
    for page in (a, b):
        await wait_for(page, "() => window.lianbo.sockets >= 2 && window.lianbo.socket === 'open'")

    await pinned.get_by_label(re.compile("New price")).fill("8.80")
    await pinned.get_by_role("button", name="Set price").click()
    for page in (a, b):
        await expect(card(page).locator(".price-now")).to_have_text("¥8.80")
        await expect(card(page).locator(".price-list")).to_have_text("¥19.99")
    await expect(pinned.locator(".pinned-price")).to_have_text("¥8.80 ¥19.99")

    await pinned.get_by_role("button", name="Unpin").click()
    await expect(host.locator("#pinned .pinned-card")).to_have_count(0)
    for page in (a, b):
        await expect(card(page)).to_have_count(0)
        await expect(page.locator("#spotlight")).to_be_hidden()
    for page in (a, b):
        assert await page.evaluate("() => window.lianbo.socketError") is None


async def test_stored_value_pays_part_and_the_limit_counts_earlier_orders(
    server: Server, seeded: Seeded, open_page: OpenPage
) -> None:
    shop = await open_shop(server, seeded, stock=(10, 7))
    xuhui = seeded.branches[0]
    host = await open_host(open_page, seeded, shop)
    await pin(host, shop, limit="5")  # ¥19.99, at most 5 per shopper
    page = await open_room(open_page, seeded, xuhui)
    sheet = page.locator("#buy-sheet")

    async def buy(qty: int, stored_value: str | None = None) -> None:
        await card(page).get_by_role("button", name="Buy").click()
        await expect(sheet).to_be_visible()
        await sheet.get_by_label("Quantity").fill(str(qty))
        if stored_value is not None:
            await sheet.get_by_label("Use stored value").check()
            await sheet.get_by_label("Amount to use (¥)").fill(stored_value)
        await sheet.get_by_role("button", name="Place order").click()

    # A first order makes the guest account; HQ then tops it up with ¥50.
    await card(page).get_by_role("button", name="Buy").click()
    await expect(sheet.get_by_label("Use stored value")).to_be_hidden()  # no account yet
    await sheet.get_by_role("button", name="Close").click()
    await buy(1)
    await expect(sheet.locator("#pickup-code")).to_have_text(PICKUP_CODE)
    await expect(sheet.locator("#cash-due")).to_have_text("¥19.99")
    await sheet.get_by_role("button", name="Done").click()
    shopper = await page.evaluate("() => window.lianbo.shopper")
    top_up = f"/api/merchants/{seeded.merchant}/shoppers/{shopper}/top-ups"
    await ok(server, "POST", top_up, {"amount": 5000}, shop.operator)

    # Two more, ¥10 of them from stored value: the rest is due at the counter.
    await buy(2, stored_value="10")
    await expect(sheet.locator("#done-total")).to_have_text("¥39.98")
    await expect(sheet.locator("#cash-due")).to_have_text("¥29.98")
    await expect(sheet.locator("#done-balance")).to_have_text("¥40.00")
    await sheet.get_by_role("button", name="Done").click()
    balance = await ok(server, "GET", "/api/me/balance", headers=await shopper_auth(page))
    assert balance["spendable"] == 4000

    # More stored value than there is never leaves the page; three more pass the limit
    # of 5 with the 3 already bought: the server refuses, the sheet says why.
    await buy(1, stored_value="40.01")
    await expect(sheet.get_by_role("alert")).to_have_text("You have ¥40.00 of stored value to use.")
    await sheet.get_by_role("button", name="Close").click()
    await buy(3)
    await expect(sheet.get_by_role("alert")).to_contain_text("at most 5 per person")
    await expect(page.locator("#orders .order")).to_have_count(2)
    await expect(card(page).locator(".card-stock")).to_have_text("7 left here")


async def shopper_auth(page: Page) -> dict[str, str]:
    """The page's own session (its HttpOnly cookie) as a header for the test's client."""
    cookies = await page.context.cookies()
    token = next(c["value"] for c in cookies if c["name"] == "lianbo_session")
    return {"Authorization": f"Bearer {token}"}


async def test_the_pages_msgpack_codec_agrees_with_the_servers(
    server: Server, open_page: OpenPage
) -> None:
    """static/js/msgpack.js decodes what Python's msgpack packs, byte for byte both ways."""
    values: list[Any] = [
        None,
        True,
        False,
        0,
        127,
        128,
        65535,
        65536,
        2**32,
        2**53 - 1,
        -1,
        -33,
        -129,
        -(2**31) - 1,
        -(2**53) + 1,
        0.5,
        -1.25,
        "",
        "x" * 32,
        "é中文🙂",
        "y" * 70000,
        [],
        list(range(16)),
        {"v": 1, "type": "card.shown", "seq": 7, "data": {"id": "card_1", "price": 990}},
        {str(i): i for i in range(16)},
        b"\x00\x01\xff",
        b"q" * 300,
    ]
    page = await open_page("/")
    packed = [msgpack.packb(v).hex() for v in values]
    result = await page.evaluate(
        """async (packed) => {
          const { decode, encode } = await import("/static/js/msgpack.js");
          const bytes = (hex) =>
            new Uint8Array(hex.match(/../g)?.map((h) => parseInt(h, 16)) ?? []);
          const hex = (u) => Array.from(u, (b) => b.toString(16).padStart(2, "0")).join("");
          return packed.map((h) => {
            const value = decode(bytes(h));
            return { again: hex(encode(value)), bin: value instanceof Uint8Array };
          });
        }""",
        packed,
    )
    for value, hexed, got in zip(values, packed, result, strict=True):
        assert got["again"] == hexed, value if not isinstance(value, str) else value[:20]
        assert got["bin"] is isinstance(value, bytes)
    # And a hello as the page sends it is what the server reads.
    hello = await page.evaluate(
        """async () => {
          const { encode } = await import("/static/js/msgpack.js");
          return Array.from(encode({ v: 1, type: "hello", data: { last_seq: null } }));
        }"""
    )
    assert msgpack.unpackb(bytes(hello)) == {"v": 1, "type": "hello", "data": {"last_seq": None}}
