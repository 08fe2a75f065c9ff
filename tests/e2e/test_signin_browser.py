"""Signing in through the page in Chromium: a wrong password, then the right one, landing
on the franchisee's console (never on an outside `next`), with an HttpOnly cookie; and
the page's answer to throttling.

The landing page itself belongs to the consoles; it is stubbed here so that this test
checks only where the sign-in page goes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from playwright.async_api import Page, Route, expect

from streamserver.auth import SESSION_COOKIE
from tests.commerce_api import ok

if TYPE_CHECKING:
    from tests.conftest import Seeded, Server
    from tests.e2e.conftest import OpenPage

PASSWORD = "correct horse battery"
EMAIL = "xuhui@chali.example"


async def add_franchisee(server: Server, seeded: Seeded) -> str:
    body = {
        "username": EMAIL,
        "password": PASSWORD,
        "role": "franchisee",
        "branch": seeded.branches[0],
    }
    auth = {"Authorization": f"Bearer {seeded.operator_token}"}
    await ok(server, "POST", f"/api/merchants/{seeded.merchant}/users", body, auth)
    return f"/branches/{seeded.branches[0]}/console"


async def submit(page: Page, password: str) -> None:
    await page.get_by_label("Email").fill(EMAIL)
    await page.get_by_label("Password").fill(password)
    async with page.expect_response(re.compile(r"/api/sessions$")):
        await page.get_by_role("button", name="Sign in").click()


async def test_a_franchisee_signs_in_through_the_page_and_lands_on_the_console(
    server: Server, seeded: Seeded, open_page: OpenPage
) -> None:
    console = await add_franchisee(server, seeded)
    page = await open_page("/signin?next=//evil.example/steal")

    async def stub_console(route: Route) -> None:
        await route.fulfill(status=200, content_type="text/html", body="<h1>console</h1>")

    await page.route(server.url(console), stub_console)

    await submit(page, "not the password")
    await expect(page.locator("#error")).to_have_text("Wrong email or password.")
    await expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    assert page.url == server.url("/signin?next=//evil.example/steal")

    await submit(page, PASSWORD)
    await page.wait_for_url(server.url(console))
    await expect(page.locator("h1")).to_have_text("console")
    cookies = {c["name"]: c for c in await page.context.cookies()}
    session = cookies[SESSION_COOKIE]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"
    assert session["path"] == "/"
    assert SESSION_COOKIE not in await page.evaluate("() => document.cookie")

    # Back on the sign-in page, it says so and offers the way on (to `next` when safe).
    await page.goto(server.url("/signin?next=/shows/" + seeded.show + "/host"))
    await expect(page.locator("#signed-in")).to_be_visible()
    await expect(page.locator("#continue")).to_have_attribute("href", f"/shows/{seeded.show}/host")


async def test_the_page_says_when_to_try_again_after_too_many_failures(
    server: Server, seeded: Seeded, open_page: OpenPage
) -> None:
    await add_franchisee(server, seeded)
    page = await open_page("/signin")
    for _ in range(5):
        await submit(page, "not the password")
        await expect(page.locator("#error")).to_have_text("Wrong email or password.")
    await submit(page, PASSWORD)
    await expect(page.locator("#error")).to_have_text(
        "Too many failed sign-ins. Wait 30 seconds, then try again."
    )
    button = page.locator("#submit")
    await expect(button).to_be_disabled()
    await expect(button).to_have_text(re.compile(r"^Try again in (30|29|28) s$"))
