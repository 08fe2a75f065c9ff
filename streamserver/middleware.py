"""Request middleware: access checks, errors as JSON, CORS for WHIP/WHEP, Origin checks.

Errors: `BadInput` (malformed input, 4xx naming the field) and `RelayError` (a media
request the relay refuses) become JSON answers here, so handlers stay straight-line
and no bad input produces a 500.
"""

from __future__ import annotations

import logging
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

from streamserver.auth import SESSION_COOKIE, bearer_token, check_access
from streamserver.badinput import BadInput
from streamserver.origins import SAFE_METHODS, is_allowed_origin
from streamserver.relay.offer import BadOffer
from streamserver.relay.sessions import RelayError
from streamserver.responses import json_response
from streamserver.routes import ACCESS

logger = logging.getLogger(__name__)

# RFC 9725 §4.7 and the WHEP draft: browser clients on another origin need these,
# and `*` in Allow-Headers does not cover Authorization (see shared notes on clients).
CORS_HEADERS: Final = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, DELETE, PATCH, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match, ETag",
    "Access-Control-Expose-Headers": "Location, Link, ETag, Accept-Post, Allow",
    "Access-Control-Max-Age": "86400",
}
CORS_PREFIXES: Final = ("/whip/", "/whep/")


def error_response(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    body: dict[str, str] = {"error": code, "message": message}
    if field is not None:
        body["field"] = field
    response = json_response(body, status=status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="lianbo"'
    return response


@web.middleware
async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request's way in: Origin and access checks, errors as JSON, CORS headers.

    One middleware rather than one per concern: each layer costs a coroutine and a
    wrapper per request, about a tenth of a purchase's CPU for four of them.
    """
    try:
        check_origin(request)
        required = ACCESS.get(request.match_info.route.handler)
        if required is not None and request.method != "OPTIONS":
            await check_access(request, required)
        response = await handler(request)
    except BadInput as exc:
        response = error_response(exc.status, "bad_input", exc.message, exc.field)
    except BadOffer as exc:
        response = error_response(400, "bad_offer", str(exc), "sdp")
    except RelayError as exc:
        response = error_response(exc.status, type(exc).__name__.lower(), str(exc))
        if exc.status == 503:
            response.headers["Retry-After"] = "2"
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _http_error(exc)
    if request.path.startswith(CORS_PREFIXES):
        response.headers.update(CORS_HEADERS)
    return response


def _http_error(exc: web.HTTPException) -> web.Response:
    """404/405/409/410 from handlers and the router: the same JSON shape as the rest."""
    message = exc.text if exc.text and exc.text != exc.reason else exc.reason
    response = error_response(exc.status, exc.reason.lower().replace(" ", "_"), message)
    for name, value in exc.headers.items():
        if name.lower() not in ("content-type", "content-length"):
            response.headers[name] = value
    return response


def check_origin(request: web.Request) -> None:
    """Refuse a state-changing request that a foreign page made a browser send (CSRF).

    SameSite=Lax keeps the session cookie off cross-site POSTs; this also covers pages
    of another origin on the same site, browsers without SameSite, and signing a victim
    in as someone else. A bearer token is exempt (a foreign page cannot know it), and so
    are cookieless WHIP/WHEP calls from players on other sites (RFC 9725 §4.7).
    """
    origin = request.headers.get("Origin")
    if origin is None or request.method in SAFE_METHODS or bearer_token(request) is not None:
        return
    cookieless_media = SESSION_COOKIE not in request.cookies and request.path.startswith(
        CORS_PREFIXES
    )
    if not cookieless_media and not is_allowed_origin(origin, request):
        raise BadInput("Origin", f"requests from {origin} may not change anything here", 403)


async def no_stale_assets(request: web.Request, response: web.StreamResponse) -> None:
    """Pages and their scripts change together on upgrade: make browsers revalidate."""
    if request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-cache")


MIDDLEWARES: Final = (edge,)
