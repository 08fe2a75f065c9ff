"""The resources a path names, found or answered with 404."""

from __future__ import annotations

from aiohttp import web

from commerce.catalog import Branch
from commerce.ids import BranchId, ShowId
from commerce.shows import Show, branch_room
from streamserver.keys import READS, STORE


async def find_show(request: web.Request, *, fresh: bool = False) -> Show:
    """The show in the path; `fresh` for handlers about to change it (else cached ≤ 1 s)."""
    show_id = ShowId(request.match_info["show"])
    reads = request.app[STORE] if fresh else request.app[READS]
    show = await reads.show(show_id)
    if show is None:
        raise web.HTTPNotFound(text="no such show")
    return show


async def find_room_branch(request: web.Request, show: Show) -> Branch:
    branch = await request.app[READS].branch(BranchId(request.match_info["branch"]))
    if branch is None or branch_room(show, branch) is None:
        raise web.HTTPNotFound(text="no such branch room")
    return branch
