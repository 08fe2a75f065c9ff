"""The consoles in Chromium: a franchisee signs in, sees an order placed in its room
appear live, marks it ready, hands it over by the shopper's code and collects the
payment; another branch's franchisee never sees it; HQ's board shows the sale under
the right branch, live. Every wait is on the page's own state (`expect`), never a sleep.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from playwright.async_api import Page, expect

from tests.commerce_api import PASSWORD, Shop, buying, new_shopper, ok, open_shop

if TYPE_CHECKING:
    from tests.conftest import Seeded, Server
    from tests.e2e.conftest import OpenPage


async def add_staff(server: Server, shop: Shop, username: str, branch: str | None) -> None:
    body = {"username": username, "password": PASSWORD, "role": "franchisee", "branch": branch}
    if branch is None:
        body = {"username": username, "password": PASSWORD, "role": "hq_operator"}
    await ok(server, "POST", f"/api/merchants/{shop.seeded.merchant}/users", body, shop.operator)


async def sign_in(open_page: OpenPage, path: str, username: str) -> Page:
    """Open a console as a stranger: the sign-in page comes first, then the console."""
    page = await open_page(path)
    await expect(page.get_by_label("Email")).to_be_visible()
    await page.get_by_label("Email").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"**{path}")
    await expect(page.locator("#live")).to_have_text("live")
    return page


async def test_a_franchisee_fulfils_a_pickup_live_and_hq_sees_the_sale(
    server: Server, seeded: Seeded, open_page: OpenPage
) -> None:
    shop = await open_shop(server, seeded)
    xuhui, pudong = seeded.branches
    await add_staff(server, shop, "xuhui@chali.example", xuhui)
    await add_staff(server, shop, "pudong@chali.example", pudong)
    await add_staff(server, shop, "hq@chali.example", None)

    mine = await sign_in(open_page, f"/branches/{xuhui}/console", "xuhui@chali.example")
    await expect(mine.locator("#branch-name")).to_have_text("Xuhui")
    room_url = server.url(f"/shows/{seeded.show}/rooms/{xuhui}")
    await expect(mine.locator("#room-link")).to_have_attribute("href", room_url)
    await expect(mine.locator("#qr svg")).to_have_attribute("data-text", room_url)
    await expect(mine.locator("#queue-empty")).to_be_visible()
    theirs = await sign_in(open_page, f"/branches/{pudong}/console", "pudong@chali.example")
    await expect(theirs.locator("#branch-name")).to_have_text("Pudong")
    hq = await sign_in(open_page, "/hq", "hq@chali.example")
    await expect(hq.locator("#board-rows tr")).to_have_count(2)

    # A shopper opens the Xuhui room: its console counts the viewer.
    await open_page(f"/shows/{seeded.show}/rooms/{xuhui}")
    await expect(mine.locator("#viewers")).to_have_text("1")
    await expect(hq.locator("#total-viewers")).to_have_text("1")

    # An order placed in the Xuhui room appears in Xuhui's queue, live.
    shopper = await new_shopper(server, shop, "Mei")
    body = {"lines": [{"sku": shop.sku, "qty": 2}], "fulfillment": "pickup"}
    order = await ok(server, "POST", shop.room_orders(0), body, buying(shopper))
    row = mine.locator(f'#queue .order[data-order="{order["id"]}"]')
    await expect(row).to_be_visible()
    await expect(row.locator(".order-state")).to_have_text("new")
    await expect(row.locator(".order-meta")).to_contain_text("¥39.98 to collect")
    await expect(mine.locator("#customers")).to_contain_text("Mei")

    await row.get_by_role("button", name="Mark ready").click()
    await expect(row.locator(".order-state")).to_have_text("ready for pickup")

    # At the counter: the shopper shows the code, the franchisee enters it.
    wrong = "000000" if order["pickup_code"] != "000000" else "111111"
    await mine.get_by_label("Pickup code").fill(wrong)
    await mine.get_by_role("button", name="Hand over").click()
    await expect(mine.locator("#pickup-message")).to_contain_text("No order waiting here")
    await mine.get_by_label("Pickup code").fill(order["pickup_code"])
    await mine.get_by_role("button", name="Hand over").click()
    await expect(mine.locator("#pickup-message")).to_contain_text("Collect ¥39.98")
    await expect(row.locator(".order-state")).to_have_text("picked up · payment due")
    await row.get_by_role("button", name="Collected ¥39.98").click()
    done = mine.locator(f'#done .order[data-order="{order["id"]}"]')
    await expect(done.locator(".order-state")).to_have_text("completed")
    await expect(mine.locator("#queue-empty")).to_be_visible()
    await expect(mine.locator("#st-sales")).to_have_text("¥39.98")
    await expect(mine.locator("#st-commission")).to_have_text("-¥4.00")  # 10 %, half up
    await expect(mine.locator("#chart")).to_have_attribute("data-total", "3998")

    # HQ's board ranks Xuhui first with the sale, settled once paid.
    first = hq.locator("#board-rows tr").first
    await expect(first).to_have_attribute("data-branch", xuhui)
    await expect(first.locator(".orders-count")).to_have_text("1")
    await expect(first.locator(".sales")).to_have_text("¥39.98")
    await expect(first.locator(".settled")).to_have_text("¥39.98")
    await expect(hq.locator(f'#board-rows tr[data-branch="{pudong}"] .sales')).to_have_text("¥0.00")

    # Pudong's console saw none of it: the feed sent Xuhui's frames before HQ's board.
    await expect(theirs.locator("#queue-empty")).to_be_visible()
    await expect(theirs.locator(".order")).to_have_count(0)
    await expect(theirs.locator("#st-sales")).to_have_text("¥0.00")
    await expect(theirs.locator("#customers-count")).to_have_text("0")
    orders_seen = await theirs.evaluate("() => [...window.lianbo.orders.orders.keys()]")
    assert orders_seen == []


async def test_a_franchisee_cannot_open_another_branchs_console(
    server: Server, seeded: Seeded, open_page: OpenPage
) -> None:
    shop = await open_shop(server, seeded)
    xuhui, pudong = seeded.branches
    await add_staff(server, shop, "xuhui@chali.example", xuhui)
    mine = await sign_in(open_page, f"/branches/{xuhui}/console", "xuhui@chali.example")
    await mine.goto(server.url(f"/branches/{pudong}/console"))
    await mine.wait_for_url(re.compile(r"/signin\?next="))
    assert "/signin" in mine.url
    await expect(mine.get_by_label("Email")).to_be_visible()


async def test_hq_runs_branches_catalog_stock_terms_and_shows_from_its_console(
    server: Server, seeded: Seeded, open_page: OpenPage
) -> None:
    shop = await open_shop(server, seeded, stock=(10, 7))
    await add_staff(server, shop, "hq@chali.example", None)
    hq = await sign_in(open_page, "/hq", "hq@chali.example")
    await expect(hq.locator("#merchant-name")).to_have_text("Cha Li")

    # A new branch gets a row on the board and in the stock table; then it closes.
    await hq.get_by_label("New branch").fill("Jing'an")
    await hq.get_by_label("Latitude").fill("31.2286")
    await hq.get_by_label("Longitude").fill("121.4480")
    await hq.get_by_role("button", name="Add branch").click()
    await expect(hq.locator("#branch-message")).to_contain_text("Added Jing'an")
    await expect(hq.locator("#board-rows tr")).to_have_count(3)
    jingan = hq.locator("#branches tr").filter(has=hq.get_by_label("Name of Jing'an"))
    await jingan.get_by_role("button", name="Close").click()
    await expect(jingan.get_by_role("button", name="Open")).to_be_visible()
    branches = (await ok(server, "GET", f"/api/merchants/{seeded.merchant}", None, shop.operator))[
        "branches"
    ]
    assert [(b["name"], b["is_open"], b["lat"]) for b in branches][2] == ("Jing'an", False, 31.2286)

    # A product with two variants, and stock arriving at Pudong.
    await hq.get_by_label("Product name").fill("Osmanthus oolong")
    await hq.get_by_label("Variants").fill("250 g tin | 68.00\n500 g tin | 128")
    await hq.get_by_role("button", name="Add product").click()
    await expect(hq.locator("#product-message")).to_contain_text("with 2 variant(s)")
    await expect(hq.locator("#stock tr")).to_have_count(3)
    await hq.get_by_label("Stock arriving").select_option(label="500 g tin")
    await hq.get_by_label("at branch").select_option(label="Pudong")
    await hq.get_by_label("Units").fill("24")
    await hq.get_by_role("button", name="Receive").click()
    await expect(hq.locator("#receipt-message")).to_contain_text("24 now available")
    row = hq.locator("#stock tr").filter(has_text="500 g tin")
    await expect(row.locator("td").last).to_have_text("24")

    # Terms in percent become basis points.
    await hq.get_by_label("HQ commission (%)").fill("8.5")
    await hq.get_by_label("Cashback (%)").fill("2")
    await hq.get_by_role("button", name="Save terms").click()
    await expect(hq.locator("#terms-message")).to_contain_text("Saved")
    terms = await ok(server, "GET", f"/api/merchants/{seeded.merchant}/terms", None, shop.operator)
    assert (terms["commission_rate_bp"], terms["cashback_rate_bp"]) == (850, 200)

    # A new show: the host key is shown once, with the WHIP URL for OBS.
    await hq.get_by_label("New show title").fill("Winter tasting")
    await hq.get_by_role("button", name="Create show").click()
    await expect(hq.locator("#show-secret")).to_be_visible()
    whip = await hq.locator("#secret-whip-url").inner_text()
    assert re.fullmatch(rf"{re.escape(server.base)}/whip/s_[a-z2-7]+", whip)
    token = await hq.locator("#secret-token").inner_text()
    show_id = whip.rsplit("/", 1)[1]
    host = {"Authorization": f"Bearer {token}"}
    await ok(server, "GET", f"/api/shows/{show_id}/pace", None, host)  # the key works
    await expect(hq.locator("#shows .show-item")).to_have_count(2)
    await expect(hq.locator("#shows .show-item").first).to_contain_text("Winter tasting")
    await expect(hq.locator("#board-show")).to_have_text("Winter tasting")  # the newest
