"""Signing in and out, shoppers' guest accounts, and staff accounts made by HQ.

Staff sign in with their email (the username) and password; the merchant may be left
out when the email names one account. Failed attempts are throttled per email and per
client address (streamserver/throttle.py). A session lasts `Config.staff_session_s` or
`Config.shopper_session_s`: the cookie's Max-Age and the stored expiry say the same, and
the server refuses the session after it whatever the browser still sends.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final
from urllib.parse import urlsplit

from aiohttp import web

from commerce.access import Actor, Role
from commerce.ids import BranchId, MerchantId, ShopperId
from commerce.shows import ShowStatus
from streamserver import provisioning
from streamserver.api.orders import now_ms
from streamserver.auth import ACTOR, SESSION_COOKIE, digest, presented_token
from streamserver.badinput import BadInput, read_json_object, text_field
from streamserver.ids import new_id, new_token
from streamserver.keys import CONFIG, READS, SIGNIN_THROTTLE, STORE
from streamserver.passwords import hash_password, verify_password
from streamserver.responses import json_response
from streamserver.store.port import Session, Store, User

PASSWORD_LENGTH_MIN: Final = 10
USERNAME_LENGTH_MAX: Final = 254  # an email address (RFC 5321's path limit)
NEXT_LENGTH_MAX: Final = 2000
STAFF_ROLES: Final = (Role.HQ_OPERATOR, Role.HOST, Role.FRANCHISEE)
# Verified when the username is unknown too, so timing does not tell which names exist.
_DUMMY_HASH: Final = hash_password("not a real password")


def present_actor(actor: Actor) -> dict[str, Any]:
    return {
        "role": actor.role,
        "merchant": actor.merchant,
        "branch": actor.branch,
        "shopper": actor.shopper,
    }


async def home_path(store: Store, actor: Actor) -> str:
    """Where a signed-in person starts: HQ's console, their branch's console, or for a
    host the studio of the newest show not over yet (it asks for the stream key)."""
    match actor.role:
        case Role.FRANCHISEE:
            return f"/branches/{actor.branch}/console"
        case Role.HQ_OPERATOR:
            return "/hq"
        case Role.HOST:
            shows = await store.shows(actor.merchant)
            current = next((s for s in shows if s.status is not ShowStatus.ENDED), None)
            return "/" if current is None else f"/shows/{current.id}/host"
        case Role.SHOPPER:
            return "/"


def safe_next(value: object) -> str | None:
    """`value` if it is a path on this server, else None: never an open redirect.

    Refused: absolute URLs, scheme-relative `//host`, and anything a browser might read
    as one (`/\\host`, or `/<tab>/host`, since browsers drop tabs and newlines in URLs).
    """
    if not isinstance(value, str) or not 1 <= len(value) <= NEXT_LENGTH_MAX:
        return None
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path.startswith("/signin"):
        return None
    return value


async def _start_session(
    request: web.Request, actor: Actor, ttl_s: int, extra: dict[str, Any] | None = None
) -> web.Response:
    token = new_token()
    expires_at_ms = now_ms() + ttl_s * 1000
    await request.app[STORE].create_session(digest(token), Session(actor, expires_at_ms))
    body = {**present_actor(actor), "token": token, "expires_at_ms": expires_at_ms, **(extra or {})}
    response = json_response(body, status=201)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=ttl_s,
        httponly=True,
        samesite="Lax",  # not sent on cross-site POSTs; the Origin check covers the rest
        secure=request.secure,  # over https the cookie never travels in clear
        path="/",
    )
    return response


async def post_session(request: web.Request) -> web.Response:
    """Sign in: {"username", "password", "merchant"?, "next"?}.

    401 for a wrong username or password; 429 with Retry-After after repeated failures;
    409 naming `merchant` (with the choices) when the email and password fit accounts
    at several merchants. The answer's `next` is where the page goes: the given `next`
    if it is a path on this server, else the person's home.
    """
    data = await read_json_object(request)
    username = text_field(data, "username", length_max=USERNAME_LENGTH_MAX)
    password = data.get("password")
    if not isinstance(password, str) or not password:
        raise BadInput("password", "password is required")
    merchant = data.get("merchant")
    if merchant is not None:
        merchant = MerchantId(text_field(data, "merchant", length_max=64))
    throttle = request.app[SIGNIN_THROTTLE]
    address = request.remote or "unknown"
    wait_s = throttle.start(username, address)
    if wait_s:
        raise web.HTTPTooManyRequests(
            headers={"Retry-After": str(wait_s)},
            text=f"too many failed sign-ins: try again in {wait_s} s",
        )
    matches: list[User] = []
    try:
        matches = await _matching_users(request, merchant, username, password)
    finally:
        throttle.finish(username, address, signed_in=bool(matches))
    if not matches:
        raise BadInput("password", "wrong email or password", status=401)
    if len(matches) > 1:
        return await _choose_merchant(request, matches)
    user = matches[0]
    actor = Actor(role=user.role, merchant=user.merchant, branch=user.branch)
    go_to = safe_next(data.get("next")) or await home_path(request.app[STORE], actor)
    ttl_s = request.app[CONFIG].staff_session_s
    return await _start_session(request, actor, ttl_s, {"next": go_to})


async def _matching_users(
    request: web.Request, merchant: MerchantId | None, username: str, password: str
) -> list[User]:
    """The accounts this username and password open (several only across merchants)."""
    store = request.app[STORE]
    if merchant is not None:
        user = await store.user(merchant, username)
        candidates = [] if user is None else [user]
    else:
        candidates = await store.users_named(username)
    if not candidates:
        await asyncio.to_thread(verify_password, password, _DUMMY_HASH)
    return [
        user
        for user in candidates
        if await asyncio.to_thread(verify_password, password, user.password_hash)
    ]


async def _choose_merchant(request: web.Request, matches: list[User]) -> web.Response:
    store = request.app[STORE]
    choices = []
    for user in matches:
        found = await store.merchant(user.merchant)
        choices.append({"id": user.merchant, "name": found.name if found else user.merchant})
    return json_response(
        {
            "error": "choose_merchant",
            "message": "this email signs in at several brands: choose one",
            "field": "merchant",
            "merchants": choices,
        },
        status=409,
    )


async def delete_session(request: web.Request) -> web.Response:
    """Sign out: the session is revoked in the store and the cookie cleared."""
    token = presented_token(request)
    if token is not None:
        await request.app[STORE].delete_session(digest(token))
        request.app[READS].forget_session(digest(token))
    response = json_response({"signed_out": True})
    response.del_cookie(
        SESSION_COOKIE, path="/", secure=request.secure, httponly=True, samesite="Lax"
    )
    return response


async def get_session(request: web.Request) -> web.Response:
    actor = request[ACTOR]
    assert actor is not None
    home = await home_path(request.app[STORE], actor)
    return json_response({**present_actor(actor), "home": home})


async def post_shopper(request: web.Request) -> web.Response:
    """A shopper's guest account at a merchant: {"name"?}. Answers with a session."""
    merchant = MerchantId(request.match_info["merchant"])
    store = request.app[STORE]
    if await store.merchant(merchant) is None:
        raise web.HTTPNotFound(text="no such merchant")
    data = await read_json_object(request)
    name = text_field(data, "name", length_max=64, required=False) or "guest"
    shopper = ShopperId(new_id("shopper"))
    await store.create_shopper(merchant, shopper, name)
    actor = Actor(role=Role.SHOPPER, merchant=merchant, shopper=shopper)
    return await _start_session(request, actor, request.app[CONFIG].shopper_session_s)


def password_field(data: dict[str, Any]) -> str:
    password = data.get("password")
    if not isinstance(password, str) or len(password) < PASSWORD_LENGTH_MIN:
        raise BadInput("password", f"password needs at least {PASSWORD_LENGTH_MIN} characters")
    return password


async def post_user(request: web.Request) -> web.Response:
    """HQ creates a staff account: {"username", "password", "role", "branch"?}.

    Roles: hq_operator, host (hosts any show of the merchant) or franchisee (one branch).
    """
    merchant = MerchantId(request.match_info["merchant"])
    data = await read_json_object(request)
    username = text_field(data, "username", length_max=USERNAME_LENGTH_MAX)
    password = password_field(data)
    role = data.get("role")
    if role not in STAFF_ROLES:
        raise BadInput("role", "role must be 'hq_operator', 'host' or 'franchisee'")
    branch = None
    if role == Role.FRANCHISEE:
        found = await request.app[STORE].branch(BranchId(str(data.get("branch", ""))))
        if found is None or found.merchant != merchant:
            raise BadInput("branch", "a franchisee runs one branch of this merchant")
        branch = found.id
    user = await provisioning.create_user(
        request.app[STORE], merchant, username, password, Role(role), branch
    )
    if user is None:
        raise BadInput("username", "that username is taken", status=409)
    return json_response({"username": username, "role": user.role, "branch": branch}, status=201)
