"""The pages in a real browser: the host goes live over WHIP, shoppers watch over WHEP.

Every wait has a deadline and waits on the page's own state (DOM text, video element,
`RTCPeerConnection.getStats()`), never on a sleep.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from playwright.async_api import Page, expect

if TYPE_CHECKING:
    from commerce.ids import ShowId
    from tests.conftest import Seeded, Server
    from tests.e2e.conftest import OpenPage

WAIT_MS = 15_000

# framesDecoded of the page's current WHEP session (0 before any video arrives).
FRAMES_DECODED = """async () => {
  const pc = window.lianbo && window.lianbo.pc;
  if (!pc) return 0;
  let frames = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "video") frames = r.framesDecoded || 0;
  });
  return frames;
}"""


async def wait_for(page: Page, predicate: str, arg: Any = None) -> None:
    """Wait until the JS `predicate` holds, checked every 50 ms (not per animation frame)."""
    await page.wait_for_function(predicate, arg=arg, polling=50, timeout=WAIT_MS)


async def frames_decoded(page: Page) -> int:
    return int(await page.evaluate(FRAMES_DECODED))


async def wait_frames_beyond(page: Page, count: int) -> int:
    """Wait until the current session has decoded more than `count` video frames."""
    await wait_for(page, f"async (count) => (await ({FRAMES_DECODED})()) > count", count)
    return await frames_decoded(page)


async def assert_plays(page: Page, *, beyond: int = 0) -> int:
    """The video has a picture, its clock runs and frames past `beyond` keep being decoded."""
    await wait_for(
        page,
        "() => { const v = document.getElementById('video');"
        " return v.videoWidth > 0 && v.currentTime > 0; }",
    )
    started = await page.evaluate("() => document.getElementById('video').currentTime")
    await wait_for(page, "(t) => document.getElementById('video').currentTime > t + 0.3", started)
    frames = await wait_frames_beyond(page, beyond)
    return await wait_frames_beyond(page, frames + 10)


async def show_state(server: Server, show: str) -> dict[str, Any]:
    async with server.http.get(server.url(f"/api/shows/{show}")) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def open_host(open_page: OpenPage, seeded: Seeded) -> Page:
    host = await open_page(f"/shows/{seeded.show}/host#token={seeded.host_token}")
    await wait_for(host, "() => document.getElementById('preview').videoWidth > 0")
    return host


async def go_live(host: Page) -> None:
    await host.get_by_role("button", name="Go live").click()
    await wait_for(host, "() => window.lianbo.state === 'live'")
    await expect(host.locator("#show-status")).to_have_text("live")


async def stop(host: Page) -> None:
    await host.get_by_role("button", name="Stop").click()
    await wait_for(host, "() => window.lianbo.state === 'offline'")


async def test_two_rooms_watch_pause_and_resume(
    server: Server, seeded: Seeded, open_page: OpenPage
) -> None:
    xuhui, pudong = seeded.branches
    host = await open_host(open_page, seeded)
    # The host key came in the fragment; the page keeps it but clears the address bar.
    assert await host.locator("#token").input_value() == seeded.host_token
    assert "token" not in host.url

    # One shopper arrives before the show starts: told so, then the video starts by itself.
    early = await open_page(f"/shows/{seeded.show}/rooms/{xuhui}")
    await expect(early.locator("#branch-name")).to_have_text("Xuhui")
    await expect(early.locator("#show-title")).to_have_text("Autumn launch")
    await expect(early.locator("#overlay")).to_have_text("The show starts soon")
    await expect(early.locator("#overlay")).to_be_visible()

    await go_live(host)
    late = await open_page(f"/shows/{seeded.show}/rooms/{pudong}")
    await expect(late.locator("#branch-name")).to_have_text("Pudong")
    watchers = (early, late)
    for page in watchers:
        await assert_plays(page)
        await expect(page.locator("#overlay")).to_be_hidden()
        await expect(page.locator("#live-badge")).to_be_visible()
        await expect(page.locator("#viewer-count")).to_have_text("1")
        await expect(page.locator("#cards")).to_be_attached()

    state = await show_state(server, seeded.show)
    assert state["status"] == "live"
    assert state["viewers"] == 2
    assert {room["branch"]["id"]: room["viewers"] for room in state["rooms"]} == {
        xuhui: 1,
        pudong: 1,
    }
    await expect(host.locator("#viewers")).to_have_text("2")
    for branch in (xuhui, pudong):
        await expect(host.locator(f'.room-viewers[data-branch="{branch}"]')).to_have_text(
            "1 watching"
        )
    assert await host.evaluate("() => window.lianbo.pc.connectionState") == "connected"

    # Remember each page's peer connection: pause and resume must keep it, without reload.
    for page in watchers:
        await page.evaluate("() => { window.keptPc = window.lianbo.pc; }")

    await stop(host)
    for page in watchers:
        await expect(page.locator("#overlay")).to_have_text("The show is paused")
        await expect(page.locator("#overlay")).to_be_visible()
    assert (await show_state(server, seeded.show))["status"] == "paused"
    paused_at = [await frames_decoded(page) for page in watchers]  # no media comes now

    await go_live(host)
    for page, frames in zip(watchers, paused_at, strict=True):
        await expect(page.locator("#overlay")).to_be_hidden()
        await assert_plays(page, beyond=frames)
        assert await page.evaluate("() => window.lianbo.pc === window.keptPc")
        assert await page.evaluate("() => window.lianbo.sessions") == 1
    state = await show_state(server, seeded.show)
    assert state["status"] == "live"
    assert {room["branch"]["id"]: room["viewers"] for room in state["rooms"]} == {
        xuhui: 1,
        pudong: 1,
    }

    # The host ends the show (after confirming): every room says so and stops.
    await host.get_by_role("button", name="End show").click()
    await host.locator("#end-dialog").get_by_role("button", name="End show").click()
    for page in watchers:
        await expect(page.locator("#overlay")).to_have_text("The show has ended")
        await wait_for(page, "() => window.lianbo.pc === null")
    await expect(host.get_by_role("button", name="Go live")).to_be_disabled()
    state = await show_state(server, seeded.show)
    assert state["status"] == "ended"
    assert state["viewers"] == 0


async def test_viewer_reconnects_when_the_host_changes_codec(
    server: Server, seeded: Seeded, open_page: OpenPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server drops viewers of the old codec; the page starts a new session itself."""
    host = await open_host(open_page, seeded)
    await host.get_by_label("Video codec").select_option(label="VP8")
    await go_live(host)
    watcher = await open_page(f"/shows/{seeded.show}/rooms/{seeded.branches[0]}")
    await assert_plays(watcher)
    await watcher.evaluate("() => { window.keptPc = window.lianbo.pc; }")

    await stop(host)
    await expect(watcher.locator("#overlay")).to_have_text("The show is paused")
    await host.get_by_label("Video codec").select_option(label="H.264")
    await go_live(host)

    await wait_for(
        watcher, "() => window.lianbo.sessions === 2 && window.lianbo.session === 'connected'"
    )
    assert await watcher.evaluate("() => window.lianbo.pc !== window.keptPc")
    await assert_plays(watcher)
    await expect(watcher.locator("#overlay")).to_be_hidden()
    codec = await watcher.evaluate(
        """async () => {
          const stats = await window.lianbo.pc.getStats();
          let id = null;
          stats.forEach((r) => {
            if (r.type === "inbound-rtp" && r.kind === "video") id = r.codecId;
          });
          return stats.get(id).mimeType;
        }"""
    )
    assert codec == "video/H264"
    await expect(host.locator("#viewers")).to_have_text("1")  # the dropped session is gone

    # The shopper leaves: the page ends its session on the way out (WHEP DELETE). Playwright
    # does not report a keepalive request sent while unloading, so the relay is watched.
    session = await watcher.evaluate("() => window.lianbo.location")
    deleted = asyncio.Event()
    leave = server.relay.leave

    async def spy(show: ShowId, session_id: str) -> None:
        if session.endswith(f"/{session_id}"):
            deleted.set()
        await leave(show, session_id)

    monkeypatch.setattr(server.relay, "leave", spy)
    await watcher.goto("about:blank")
    await asyncio.wait_for(deleted.wait(), WAIT_MS / 1000)
    await expect(host.locator("#viewers")).to_have_text("0")
    assert (await show_state(server, seeded.show))["viewers"] == 0


async def test_pages_explain_refusals(server: Server, seeded: Seeded, open_page: OpenPage) -> None:
    nowhere = await open_page(f"/shows/{seeded.show}/rooms/b_nosuchbranch")
    await expect(nowhere.get_by_role("alert")).to_have_text(
        "This store room does not exist. Check the link you were given."
    )

    wrong = await open_page(f"/shows/{seeded.show}/host#token=not-the-key")
    await wrong.get_by_role("button", name="Go live").click()
    await expect(wrong.locator("#message")).to_contain_text("host key was refused")
    assert await wrong.evaluate("() => window.lianbo.state") == "offline"

    first = await open_host(open_page, seeded)
    await go_live(first)
    second = await open_host(open_page, seeded)
    await second.get_by_role("button", name="Go live").click()
    await expect(second.locator("#message")).to_contain_text("Another publisher is already live")
    assert await second.evaluate("() => window.lianbo.pc") is None
    await expect(second.get_by_role("button", name="Go live")).to_be_enabled()
    assert (await show_state(server, seeded.show))["status"] == "live"


async def test_start_page_creates_a_demo(server: Server, open_page: OpenPage) -> None:
    start = await open_page("/")
    # A refusal from the server is shown with its message (past the input's own maxlength).
    await start.get_by_label("Brand name").evaluate(
        "(input) => { input.removeAttribute('maxlength'); input.value = 'x'.repeat(121); }"
    )
    await start.get_by_role("button", name="Create demo show").click()
    await expect(start.get_by_role("alert")).to_contain_text("at most 120 characters")

    await start.get_by_label("Brand name").fill("Cha Li Tea")
    await start.get_by_label("Stores, one per line").fill(
        "Xuhui | 1 Tianyaoqiao Rd\nPudong\nJing'an"
    )
    await start.get_by_role("button", name="Create demo show").click()
    await expect(start.locator("#result")).to_be_visible()
    await expect(start.get_by_role("alert")).to_be_hidden()
    rooms = start.locator("#room-links a")
    await expect(rooms).to_have_text(["Xuhui", "Pudong", "Jing'an"])

    host_link = await start.locator("#host-link").get_attribute("href")
    assert host_link is not None
    path, _, fragment = host_link.removeprefix(server.base).partition("#token=")
    assert path.startswith("/shows/")
    assert path.endswith("/host")
    assert fragment

    room_link = await rooms.first.get_attribute("href")
    assert room_link is not None
    watch = await open_page(room_link.removeprefix(server.base))
    await expect(watch.locator("#branch-name")).to_have_text("Xuhui")
    await expect(watch.locator("#branch-address")).to_have_text("1 Tianyaoqiao Rd")
    await expect(watch.locator("#overlay")).to_have_text("The show starts soon")

    host = await open_page(f"{path}#token={fragment}")
    await expect(host.locator("#show-status")).to_have_text("scheduled")
    await expect(host.locator("#rooms a")).to_have_text(["Xuhui", "Pudong", "Jing'an"])
