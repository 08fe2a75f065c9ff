"""Playwright fixtures for real-browser tests: Debian's Chromium with a fake camera.

The plain async Playwright API (not pytest-playwright, whose sync API breaks later
async tests). The `server` fixture runs in each test's own event loop and Playwright
objects belong to the loop that made them, so the browser is launched per test (about
half a second). Never `playwright install`: it downloads a browser from the internet.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

if TYPE_CHECKING:
    from tests.conftest import Server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--use-fake-device-for-media-stream",  # a 640x480 test pattern and a beep
    "--use-fake-ui-for-media-stream",  # no permission prompt, and no mDNS candidates
    "--allow-loopback-in-peer-connection",  # ICE on 127.0.0.1 only
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # No --disable-features here: Chromium keeps only the last one, Playwright passes its own.
)
APT_INSTALL = (
    "apt-get update -q && DEBIAN_FRONTEND=noninteractive"
    " apt-get install -y -q --no-install-recommends chromium"
)
TIMEOUT_MS = 15_000  # for actions and waits; a live page answers within the 2 s poll
expect.set_options(timeout=TIMEOUT_MS)

OpenPage = Callable[[str], Awaitable[Page]]


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, installed with apt-get (as root) when it is missing.

    The README's test command relies on this; without root it fails saying what to run.
    """
    if not CHROMIUM.exists() and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["sh", "-c", APT_INSTALL], check=False, timeout=600)
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing; install it with: sudo sh -c '{APT_INSTALL}'")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def open_page(server: Server, browser: Browser) -> AsyncIterator[OpenPage]:
    """Open a server path in a new window of its own, as on another person's device.

    Each page gets its own browser context (no shared storage), allowed to use the fake
    camera. A separate window also keeps the page in front: a background tab gets its
    animation frames about once a second, which slows clicks and `wait_for_function`.
    The test fails if any page throws; every window closes before the server stops.
    """
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    async def open_(path: str) -> Page:
        context = await browser.new_context(permissions=["camera", "microphone"])
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
        await page.goto(server.url(path))
        return page

    try:
        yield open_
    finally:
        for context in contexts:
            await context.close()
    assert not errors, "JavaScript errors in the pages:\n" + "\n".join(errors)
