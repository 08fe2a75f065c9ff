"""The consoles' endpoints: the branch console's and HQ board's websockets, HQ's list of
shows, and the host's pace of orders per card.

Who may call each is declared in routes.py (the access middleware checks the session
cookie on the upgrade request like on any other); the sockets also refuse a page of a
foreign origin (a browser sends the cookie whoever's page opens the socket).
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from commerce.ids import BranchId, MerchantId
from streamserver.api.lookup import find_show
from streamserver.api.orders import now_ms
from streamserver.api.shows import room_urls, show_urls
from streamserver.auth import digest, presented_token
from streamserver.badinput import BadInput
from streamserver.keys import CONFIG, CONSOLES, READS, STORE
from streamserver.origins import is_allowed_origin
from streamserver.realtime.consolefeed import HORIZON_MS, PACE_WINDOW_MS
from streamserver.responses import json_response

SHOWS_LISTED_MAX: Final = 100


def _since(request: web.Request) -> int:
    """The `from` query parameter: where the console's day starts (ms since the epoch).

    Consoles show at most the last day; an earlier start is moved up to it. Absent, the
    last day.
    """
    now = now_ms()
    raw = request.query.get("from")
    if raw is None:
        return now - HORIZON_MS
    try:
        since = int(raw)
    except ValueError:
        raise BadInput("from", "from is a time in ms since the epoch") from None
    if since > now:
        raise BadInput("from", "from must not be in the future")
    return max(since, now - HORIZON_MS)


async def _session(request: web.Request) -> bytes | None:
    """The digest of the caller's session, if a session let them in (it is checked again
    while the socket lives); None for an operator's bearer token."""
    token = presented_token(request)
    if token is None or await request.app[READS].session(digest(token)) is None:
        return None
    return digest(token)


def _upgrade(request: web.Request) -> None:
    """Refuse what is not a websocket upgrade from our own pages, before upgrading."""
    if not web.WebSocketResponse().can_prepare(request).ok:
        raise BadInput("Upgrade", "this is a websocket endpoint: open it with a websocket")
    origin = request.headers.get("Origin")
    if origin is not None and not is_allowed_origin(
        origin, request, request.app[CONFIG].allowed_origins
    ):
        raise BadInput("Origin", f"pages from {origin} may not open a console", status=403)


async def get_branch_console_socket(request: web.Request) -> web.StreamResponse:
    """The branch console's live feed: its orders, viewers, customers and statement."""
    since = _since(request)
    _upgrade(request)
    branch = await request.app[READS].branch(BranchId(request.match_info["branch"]))
    assert branch is not None, "Access.FRANCHISEE found the branch"
    session = await _session(request)
    return await request.app[CONSOLES].serve(request, branch.merchant, branch.id, since, session)


async def get_board_socket(request: web.Request) -> web.StreamResponse:
    """HQ's live board: every branch's viewers and sales, ranked, with totals."""
    since = _since(request)
    _upgrade(request)
    merchant = MerchantId(request.match_info["merchant"])
    if await request.app[STORE].merchant(merchant) is None:
        raise web.HTTPNotFound(text="no such merchant")
    session = await _session(request)
    return await request.app[CONSOLES].serve(request, merchant, None, since, session)


async def get_shows(request: web.Request) -> web.Response:
    """The merchant's shows, newest first, with the host link and WHIP URL of each (the
    host token itself is shown once, when the show is created)."""
    merchant = MerchantId(request.match_info["merchant"])
    store = request.app[STORE]
    branches = await store.branches(merchant)
    listed: list[dict[str, Any]] = [
        {
            "id": show.id,
            "title": show.title,
            "status": show.status,
            **show_urls(show.id),
            "rooms": [
                {"branch": b.id, "name": b.name, **room_urls(show.id, b.id)} for b in branches
            ],
        }
        for show in (await store.shows(merchant))[:SHOWS_LISTED_MAX]
    ]
    return json_response({"shows": listed})


async def get_pace(request: web.Request) -> web.Response:
    """Orders per minute for each pinned card's SKU (the last minute's, all branches)."""
    show = await find_show(request)
    feed = await request.app[CONSOLES].feed(show.merchant)
    per_sku = feed.pace(now_ms())
    cards = await request.app[STORE].cards(show.id)
    return json_response(
        {
            "window_s": PACE_WINDOW_MS // 1000,
            "cards": [
                {
                    "card": card.id,
                    "sku": card.sku,
                    "orders": per_sku[card.sku].orders if card.sku in per_sku else 0,
                    "units": per_sku[card.sku].units if card.sku in per_sku else 0,
                }
                for card in cards
            ],
        }
    )
