"""Screenshots of the consoles and pages, to check how they look: `python
scripts/screenshots.py OUT_DIR` starts `lianbo serve` on a temporary data directory,
seeds a merchant over the HTTP API (three branches, a product in stock, staff, a pinned
card, orders in several states, shoppers watching), and saves full-page PNGs of the
branch console, the HQ console, the host studio and a branch room into OUT_DIR.

Needs the test extras (Playwright) and Debian's Chromium, like the browser tests.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import aiohttp
from playwright.async_api import BrowserContext, Page, async_playwright, expect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.commerce_api import PASSWORD, Shop, buying, new_shopper, ok, open_shop
from tests.conftest import ServerProcess, launch_server, seed
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

VIEWPORT = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


async def seed_shop(server: ServerProcess) -> Shop:
    seeded = await seed(server, branch_names=("Xuhui", "Pudong", "Jing'an"))
    shop = await open_shop(server, seeded, stock=(40, 25), price=6800)
    m = f"/api/merchants/{seeded.merchant}"
    hq_user = {"username": "hq", "password": PASSWORD, "role": "hq_operator"}
    await ok(server, "POST", f"{m}/users", hq_user, shop.operator)
    await ok(
        server,
        "POST",
        f"{m}/stock-receipts",
        {"branch": seeded.branches[2], "sku": shop.sku, "qty": 12},
        shop.operator,
    )
    host = {"Authorization": f"Bearer {seeded.host_token}"}
    card = {"sku": shop.sku, "title": "Osmanthus oolong 250 g", "price": 5900}
    await ok(server, "POST", f"/api/shows/{seeded.show}/cards", card, host)
    return shop


async def place_orders(server: ServerProcess, shop: Shop) -> None:
    """Orders in every state a counter sees, most of them in the first branch."""
    branch = shop.seeded.branches[0]
    for i, (room, qty, then) in enumerate(
        [
            (0, 2, "placed"),
            (0, 1, "ready"),
            (0, 3, "picked_up"),
            (0, 1, "completed"),
            (0, 2, "cancelled"),
            (1, 4, "placed"),
            (1, 1, "placed"),
            (2, 1, "placed"),
        ]
    ):
        shopper = await new_shopper(server, shop, name=["Mei", "Lin", "Hao", "Yu"][i % 4])
        body = {"lines": [{"sku": shop.sku, "qty": qty}], "fulfillment": "pickup"}
        order = await ok(server, "POST", shop.room_orders(room), body, buying(shopper))
        if room != 0:
            continue
        act = f"/api/branches/{branch}/orders/{order['id']}"
        staff = shop.franchisee[0]
        if then == "ready":
            await ok(server, "POST", f"{act}/ready", None, staff)
        if then in ("picked_up", "completed"):
            code = {"code": order["pickup_code"]}
            await ok(server, "POST", f"/api/branches/{branch}/pickups", code, staff)
        if then == "completed":
            await ok(server, "POST", f"{act}/collect", None, staff)
        if then == "cancelled":
            await ok(server, "POST", f"{act}/cancel", None, staff)


async def _sign_in(
    context: BrowserContext, server: ServerProcess, credentials: dict[str, str]
) -> Page:
    """Sign in inside the browser context (the session cookie lands in its jar)."""
    response = await context.request.post(server.url("/api/sessions"), data=credentials)
    assert response.ok, await response.text()
    return await context.new_page()


async def shoot(out: Path) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        async with aiohttp.ClientSession() as http:
            server = await launch_server(Path(data_dir), http)
            try:
                shop = await seed_shop(server)
                await place_orders(server, shop)
                await capture(server, shop, out)
            finally:
                await server.stop()


async def capture(server: ServerProcess, shop: Shop, out: Path) -> None:
    seeded = shop.seeded
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS)
        )
        # Two shoppers watch the first branch's room, one the second's.
        watchers = []
        for branch, size in ((0, PHONE), (0, PHONE), (1, PHONE)):
            context = await browser.new_context(viewport=size)
            page = await context.new_page()
            await page.goto(server.url(f"/shows/{seeded.show}/rooms/{seeded.branches[branch]}"))
            watchers.append(page)
        await expect(watchers[0].locator("#cards .card")).to_have_count(1)
        await watchers[0].screenshot(path=str(out / "watch.png"), full_page=True)

        context = await browser.new_context(viewport=VIEWPORT)
        staff = {"merchant": seeded.merchant, "username": "store0", "password": PASSWORD}
        branch_page = await _sign_in(context, server, staff)
        await branch_page.goto(server.url(f"/branches/{seeded.branches[0]}/console"))
        await expect(branch_page.locator("#viewers")).to_have_text("2")
        await expect(branch_page.locator("#queue .order")).to_have_count(3)
        await branch_page.screenshot(path=str(out / "branch-console.png"), full_page=True)

        context = await browser.new_context(viewport=VIEWPORT)
        hq = {"merchant": seeded.merchant, "username": "hq", "password": PASSWORD}
        hq_page = await _sign_in(context, server, hq)
        await hq_page.goto(server.url("/hq"))
        await expect(hq_page.locator("#total-viewers")).to_have_text("3")
        await expect(hq_page.locator("#stock tr")).to_have_count(1)
        await hq_page.screenshot(path=str(out / "hq-console.png"), full_page=True)

        context = await browser.new_context(viewport=VIEWPORT)
        host = await context.new_page()
        await host.goto(server.url(f"/shows/{seeded.show}/host#token={seeded.host_token}"))
        await expect(host.locator("#pinned .pinned-card")).to_have_count(1)
        await expect(host.locator(".pinned-pace")).to_contain_text("orders in the last minute")
        await host.screenshot(path=str(out / "host.png"), full_page=True)
        await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="directory for the PNGs")
    out: Path = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    asyncio.run(shoot(out))
    for png in sorted(out.glob("*.png")):
        print(png)


if __name__ == "__main__":
    main()
