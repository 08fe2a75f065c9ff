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
    response = web.json_response(body, status=status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="lianbo"'
    return response


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BadInput as exc:
        return error_response(exc.status, "bad_input", exc.message, exc.field)
    except BadOffer as exc:
        return error_response(400, "bad_offer", str(exc), "sdp")
    except RelayError as exc:
        code = type(exc).__name__.lower()
        response = error_response(exc.status, code, str(exc))
        if exc.status == 503:
            response.headers["Retry-After"] = "2"
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # 404/405/409/410 from handlers and the router: the same JSON shape as the rest.
        message = exc.text if exc.text and exc.text != exc.reason else exc.reason
        response = error_response(exc.status, exc.reason.lower().replace(" ", "_"), message)
        for name, value in exc.headers.items():
            if name.lower() not in ("content-type", "content-length"):
                response.headers[name] = value
        return response


@web.middleware
async def same_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a state-changing request that a foreign page made a browser send (CSRF).

    SameSite=Lax keeps the session cookie off cross-site POSTs; this also covers pages
    of another origin on the same site, browsers without SameSite, and signing a victim
    in as someone else. A bearer token is exempt (a foreign page cannot know it), and so
    are cookieless WHIP/WHEP calls from players on other sites (RFC 9725 §4.7).
    """
    origin = request.headers.get("Origin")
    if origin is None or request.method in SAFE_METHODS or bearer_token(request) is not None:
        return await handler(request)
    cookieless_media = SESSION_COOKIE not in request.cookies and request.path.startswith(
        CORS_PREFIXES
    )
    if not cookieless_media and not is_allowed_origin(origin, request):
        raise BadInput("Origin", f"requests from {origin} may not change anything here", 403)
    return await handler(request)


@web.middleware
async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
    route_handler = request.match_info.route.handler
    required = ACCESS.get(route_handler)
    if required is not None and request.method != "OPTIONS":
        await check_access(request, required)
    return await handler(request)


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(CORS_PREFIXES):
        return await handler(request)
    response = await handler(request)  # errors are responses by now (see `errors`)
    response.headers.update(CORS_HEADERS)
    return response


async def no_stale_assets(request: web.Request, response: web.StreamResponse) -> None:
    """Pages and their scripts change together on upgrade: make browsers revalidate."""
    if request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-cache")


MIDDLEWARES: Final = (cors, errors, same_origin, access)
