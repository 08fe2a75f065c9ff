"""WHIP ingest (RFC 9725) for the HQ host and WHEP viewing for shoppers.

POST an SDP offer → 201 Created with the answer and a `Location` to DELETE. ICE is
not trickled (aiortc gathers fully before answering), so PATCH on a session is
answered 405 as RFC 9725 §4.3.1 allows, and OPTIONS lists only the methods that
work: clients decide from it whether to trickle. Access is declared in routes.py.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web
from multidict import CIMultiDict

from commerce.ids import ShowId
from commerce.shows import ShowStatus
from streamserver.api.lookup import find_room_branch, find_show
from streamserver.badinput import BadInput
from streamserver.config import Config
from streamserver.keys import CONFIG, RELAY
from streamserver.relay.offer import OFFER_BYTES_MAX, Offer, read_offer
from streamserver.relay.sessions import Answer

SDP: Final = "application/sdp"
ENDPOINT_ALLOW: Final = "POST, OPTIONS"
SESSION_ALLOW: Final = "DELETE, OPTIONS"


async def post_whip(request: web.Request) -> web.Response:
    show = await find_show(request)
    _refuse_ended(show.status)
    offer = await _read_offer(request)
    answer = await request.app[RELAY].publish(show.id, offer)
    return _created(request, f"/whip/{show.id}/{answer.session_id}", answer)


async def delete_whip(request: web.Request) -> web.Response:
    show_id = ShowId(request.match_info["show"])
    await request.app[RELAY].stop_publishing(show_id, request.match_info["session"])
    return web.Response(status=200)


async def post_whep(request: web.Request) -> web.Response:
    show = await find_show(request)
    branch = await find_room_branch(request, show)
    _refuse_ended(show.status)
    offer = await _read_offer(request)
    answer = await request.app[RELAY].view(show.id, branch.id, offer)
    return _created(request, f"/whep/{show.id}/{branch.id}/{answer.session_id}", answer)


async def delete_whep(request: web.Request) -> web.Response:
    show_id = ShowId(request.match_info["show"])
    await request.app[RELAY].leave(show_id, request.match_info["session"])
    return web.Response(status=200)


async def options_endpoint(request: web.Request) -> web.Response:
    headers = CIMultiDict({"Allow": ENDPOINT_ALLOW, "Accept-Post": SDP})
    _add_ice_links(headers, request.app[CONFIG])
    return web.Response(status=204, headers=headers)


async def options_session(request: web.Request) -> web.Response:
    return web.Response(status=204, headers={"Allow": SESSION_ALLOW})


async def patch_session(request: web.Request) -> web.Response:
    # RFC 9725 §4.3.1: a server without trickle ICE answers 405; the client still
    # connects (the server learns its address from connectivity checks).
    return web.Response(status=405, headers={"Allow": SESSION_ALLOW}, text="trickle ICE is off")


def _refuse_ended(status: ShowStatus) -> None:
    if status is ShowStatus.ENDED:
        raise web.HTTPGone(text="the show has ended")


async def _read_offer(request: web.Request) -> Offer:
    if request.content_type != SDP:
        raise BadInput("Content-Type", f"the offer must be sent as {SDP}", status=415)
    body = await request.content.read(OFFER_BYTES_MAX + 1)
    if len(body) > OFFER_BYTES_MAX:
        raise BadInput("sdp", f"the offer is larger than {OFFER_BYTES_MAX} bytes", status=413)
    return read_offer(body)


def _created(request: web.Request, location: str, answer: Answer) -> web.Response:
    headers = CIMultiDict({"Location": location, "Content-Type": SDP})
    _add_ice_links(headers, request.app[CONFIG])
    return web.Response(status=201, body=answer.sdp.encode(), headers=headers)


def _add_ice_links(headers: CIMultiDict[str], config: Config) -> None:
    """Announce ICE servers as RFC 9725 §4.6 Link headers."""
    for server in config.rtc_ice_servers():
        for url in [server.urls] if isinstance(server.urls, str) else server.urls:
            link = f'<{url}>; rel="ice-server"'
            if server.username is not None:
                link += (
                    f'; username="{server.username}"; credential="{server.credential}"'
                    '; credential-type="password"'
                )
            headers.add("Link", link)
