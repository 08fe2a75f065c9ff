"""Signing in and out, shoppers' guest accounts, and staff accounts made by HQ."""

from __future__ import annotations

import asyncio
from typing import Any, Final

from aiohttp import web

from commerce.access import Actor, Role
from commerce.ids import BranchId, MerchantId, ShopperId
from streamserver.api.orders import now_ms
from streamserver.auth import ACTOR, SESSION_COOKIE, digest, presented_token
from streamserver.badinput import BadInput, read_json_object, text_field
from streamserver.ids import new_id, new_token
from streamserver.keys import READS, STORE
from streamserver.passwords import hash_password, verify_password
from streamserver.store.port import Session, User

STAFF_SESSION_S: Final = 12 * 3600
SHOPPER_SESSION_S: Final = 30 * 86400
PASSWORD_LENGTH_MIN: Final = 10
# Verified when the username is unknown too, so timing does not tell which names exist.
_DUMMY_HASH: Final = hash_password("not a real password")


def present_actor(actor: Actor) -> dict[str, Any]:
    return {
        "role": actor.role,
        "merchant": actor.merchant,
        "branch": actor.branch,
        "shopper": actor.shopper,
    }


async def _start_session(request: web.Request, actor: Actor, ttl_s: int) -> web.Response:
    token = new_token()
    expires_at_ms = now_ms() + ttl_s * 1000
    await request.app[STORE].create_session(digest(token), Session(actor, expires_at_ms))
    response = web.json_response({**present_actor(actor), "token": token}, status=201)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=ttl_s,
        httponly=True,
        samesite="Lax",  # not sent on cross-site POSTs: covers CSRF for cookie callers
        secure=request.secure,
        path="/",
    )
    return response


async def post_session(request: web.Request) -> web.Response:
    """Sign in: {"merchant", "username", "password"}."""
    data = await read_json_object(request)
    merchant = MerchantId(text_field(data, "merchant", length_max=64))
    username = text_field(data, "username", length_max=64)
    password = data.get("password")
    if not isinstance(password, str) or not password:
        raise BadInput("password", "password is required")
    user = await request.app[STORE].user(merchant, username)
    stored = _DUMMY_HASH if user is None else user.password_hash
    ok = await asyncio.to_thread(verify_password, password, stored)
    if user is None or not ok:
        raise BadInput("password", "wrong username or password", status=401)
    actor = Actor(role=user.role, merchant=merchant, branch=user.branch)
    return await _start_session(request, actor, STAFF_SESSION_S)


async def delete_session(request: web.Request) -> web.Response:
    token = presented_token(request)
    if token is not None:
        await request.app[STORE].delete_session(digest(token))
        request.app[READS].forget_session(digest(token))
    response = web.json_response({"signed_out": True})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def get_session(request: web.Request) -> web.Response:
    actor = request[ACTOR]
    assert actor is not None
    return web.json_response(present_actor(actor))


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
    return await _start_session(request, actor, SHOPPER_SESSION_S)


async def post_user(request: web.Request) -> web.Response:
    """HQ creates a staff account: {"username", "password", "role", "branch"?}."""
    merchant = MerchantId(request.match_info["merchant"])
    data = await read_json_object(request)
    username = text_field(data, "username", length_max=64)
    password = data.get("password")
    if not isinstance(password, str) or len(password) < PASSWORD_LENGTH_MIN:
        raise BadInput("password", f"password needs at least {PASSWORD_LENGTH_MIN} characters")
    role = data.get("role")
    if role not in (Role.HQ_OPERATOR, Role.FRANCHISEE):
        raise BadInput("role", "role must be 'hq_operator' or 'franchisee'")
    branch = None
    if role == Role.FRANCHISEE:
        found = await request.app[STORE].branch(BranchId(str(data.get("branch", ""))))
        if found is None or found.merchant != merchant:
            raise BadInput("branch", "a franchisee runs one branch of this merchant")
        branch = found.id
    user = User(
        merchant=merchant,
        username=username,
        role=Role(role),
        branch=branch,
        password_hash=await asyncio.to_thread(hash_password, password),
    )
    if not await request.app[STORE].create_user(user):
        raise BadInput("username", "that username is taken", status=409)
    return web.json_response(
        {"username": username, "role": user.role, "branch": branch}, status=201
    )
