"""Shows, their branch rooms and their live state."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from commerce.access import Role
from commerce.ids import BranchId, MerchantId, ShowId
from commerce.shows import Show, ShowEvent, next_status
from streamserver import provisioning
from streamserver.api import cards
from streamserver.api.lookup import find_room_branch, find_show
from streamserver.api.merchants import present_branch
from streamserver.auth import session_actor
from streamserver.badinput import read_json_object, text_field
from streamserver.keys import BUS, DURABILITY, HUB, READS, RELAY, STORE
from streamserver.responses import json_response

TITLE_LENGTH_MAX = 200


def show_urls(show: ShowId) -> dict[str, str]:
    return {"host_url": f"/shows/{show}/host", "whip_url": f"/whip/{show}"}


def room_urls(show: ShowId, branch: BranchId) -> dict[str, str]:
    return {"url": f"/shows/{show}/rooms/{branch}", "whep_url": f"/whep/{show}/{branch}"}


async def present_show(request: web.Request, show: Show) -> dict[str, Any]:
    branches = await request.app[STORE].branches(show.merchant)
    counts = request.app[RELAY].viewer_counts(show.id)
    return {
        "id": show.id,
        "merchant": show.merchant,
        "title": show.title,
        "status": show.status,
        "viewers": sum(counts.values()),
        "rooms": [
            {"branch": present_branch(b), "viewers": counts[b.id], **room_urls(show.id, b.id)}
            for b in branches
        ],
        **show_urls(show.id),
    }


async def post_show(request: web.Request) -> web.Response:
    """Create a show; the answer holds the host token (the WHIP stream key) once."""
    data = await read_json_object(request)
    show, token = await provisioning.create_show(
        request.app[STORE],
        MerchantId(request.match_info["merchant"]),
        text_field(data, "title", length_max=TITLE_LENGTH_MAX),
    )
    return json_response({**await present_show(request, show), "host_token": token}, status=201)


async def get_show(request: web.Request) -> web.Response:
    return json_response(await present_show(request, await find_show(request)))


async def get_room(request: web.Request) -> web.Response:
    show = await find_show(request)
    branch = await find_room_branch(request, show)
    counts = request.app[RELAY].viewer_counts(show.id)
    return json_response(
        {
            "show": {"id": show.id, "title": show.title, "status": show.status},
            "branch": present_branch(branch),
            "viewers": counts[branch.id],
            **room_urls(show.id, branch.id),
        }
    )


async def post_show_end(request: web.Request) -> web.Response:
    show = await find_show(request, fresh=True)
    status = next_status(show.status, ShowEvent.ENDED_BY_HOST)
    if status is None:
        raise web.HTTPConflict(text="the show has already ended")
    await request.app[STORE].set_show_status(show.id, status)
    request.app[READS].forget_show(show.id)
    for card in await request.app[STORE].cards(show.id):  # its flash prices end with it
        await cards.unpin(request.app, show.merchant, card)
    await request.app[BUS].publish(show.id, {"type": "show.status", "status": status})
    await request.app[RELAY].end_show(show.id)
    return json_response({"id": show.id, "status": status})


async def get_health(request: web.Request) -> web.Response:
    """Liveness plus the counts an operator (and the leak test) watches."""
    durability = request.app[DURABILITY]
    return json_response(
        {
            "status": "ok",
            "relay": request.app[RELAY].stats(),
            "tasks": len(asyncio.all_tasks()),
            # Plainly: can an order we acknowledged be lost if the store crashes?
            "store": {"durable": durability.safe, "detail": durability.detail},
        }
    )


async def get_room_socket(request: web.Request) -> web.StreamResponse:
    """A shopper's websocket in a branch room (live cards, show state, own orders)."""
    show = await find_show(request)
    branch = await find_room_branch(request, show)
    actor = await session_actor(request)
    shopper = actor.shopper if actor is not None and actor.role is Role.SHOPPER else None
    return await request.app[HUB].handle(request, show, branch, shopper)
