"""The HTML pages: host, branch-room watch page and the start page.

Pages are static files; they read the show and branch ids from their own URL, so a
printed branch-room link or QR code is the whole address of the room.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final
from urllib.parse import urlencode

from aiohttp import web

from commerce.access import Role, may_read_branch
from commerce.ids import BranchId
from streamserver.auth import session_actor
from streamserver.keys import READS

STATIC_DIR: Final = Path(__file__).resolve().parent.parent / "static"


def _page(name: str) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / name, headers={"Cache-Control": "no-cache"})


async def get_index_page(request: web.Request) -> web.FileResponse:
    return _page("index.html")


async def get_host_page(request: web.Request) -> web.FileResponse:
    return _page("host.html")


async def get_watch_page(request: web.Request) -> web.FileResponse:
    return _page("watch.html")


def _to_signin(request: web.Request) -> web.HTTPFound:
    return web.HTTPFound("/signin?" + urlencode({"next": request.path_qs}))


async def get_branch_console_page(request: web.Request) -> web.FileResponse:
    """The branch's franchisee or HQ; anyone else signs in first (and comes back)."""
    actor = await session_actor(request)
    branch = await request.app[READS].branch(BranchId(request.match_info["branch"]))
    if actor is None or branch is None or not may_read_branch(actor, branch.merchant, branch.id):
        raise _to_signin(request)
    return _page("branch.html")


async def get_hq_page(request: web.Request) -> web.FileResponse:
    actor = await session_actor(request)
    if actor is None or actor.role is not Role.HQ_OPERATOR:
        raise _to_signin(request)
    return _page("hq.html")


async def get_signin_page(request: web.Request) -> web.FileResponse:
    return _page("signin.html")
