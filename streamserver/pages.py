"""The HTML pages: host, branch-room watch page and the start page.

Pages are static files; they read the show and branch ids from their own URL, so a
printed branch-room link or QR code is the whole address of the room.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aiohttp import web

STATIC_DIR: Final = Path(__file__).resolve().parent.parent / "static"


def _page(name: str) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / name, headers={"Cache-Control": "no-cache"})


async def get_index_page(request: web.Request) -> web.FileResponse:
    return _page("index.html")


async def get_host_page(request: web.Request) -> web.FileResponse:
    return _page("host.html")


async def get_watch_page(request: web.Request) -> web.FileResponse:
    return _page("watch.html")


async def get_signin_page(request: web.Request) -> web.FileResponse:
    return _page("signin.html")
