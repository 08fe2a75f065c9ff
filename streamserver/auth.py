"""Who is calling, and whether the route's declared access lets them.

Credentials (DESIGN.md "Roles and access"):
- the merchant's operator token (bearer): the HQ operator, for API clients such as an ERP;
- the show's host token (bearer): the WHIP stream key of one show;
- a session token, from signing in (HQ operators, hosts and franchisees, with a
  scrypt-hashed password) or from a shopper's guest sign-up; browsers carry it in an
  HttpOnly, SameSite=Lax cookie, API clients as a bearer token. The server keeps only its
  SHA-256 digest, with the actor and the expiry, so signing out revokes it at once and
  an expired session is refused whatever cookie the browser still holds.
"""

from __future__ import annotations

import hashlib
import time
from enum import StrEnum
from typing import Final

from aiohttp import web

from commerce.access import Actor, Role
from commerce.ids import BranchId, MerchantId, ShowId
from streamserver.badinput import BadInput
from streamserver.keys import READS, STORE

SESSION_COOKIE: Final = "lianbo_session"
ACTOR: web.RequestKey[Actor | None] = web.RequestKey("actor", Actor | None)  # type: ignore[arg-type]


class Access(StrEnum):
    PUBLIC = "public"
    OPERATOR = "operator"  # the merchant's HQ operator
    HOST = "host"  # the show's host (its token, or a host of its merchant), or HQ
    FRANCHISEE = "franchisee"  # the branch's franchisee, or its merchant's HQ operator
    SHOPPER = "shopper"  # a shopper of the merchant whose resource it is
    SIGNED_IN = "signed_in"  # anyone with a session


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def presented_token(request: web.Request) -> str | None:
    return bearer_token(request) or request.cookies.get(SESSION_COOKIE) or None


async def session_actor(request: web.Request) -> Actor | None:
    token = presented_token(request)
    if token is None:
        return None
    session = await request.app[READS].session(digest(token))
    if session is None or session.expires_at_ms <= time.time() * 1000:
        return None
    return session.actor


async def check_access(request: web.Request, access: Access) -> None:
    """Raise 401 unless the caller holds `access` to the resource named by the path.

    Also leaves the caller's actor on the request (`request[ACTOR]`) for handlers.
    """
    request[ACTOR] = None
    if access is Access.PUBLIC:
        return
    store = request.app[STORE]
    token = presented_token(request)
    if token is None:
        raise _unauthorized("a session or an Authorization: Bearer token is required")
    merchant = await _merchant_in_path(request)
    # Shoppers and staff carry sessions; try those first on their routes (one lookup,
    # cached), the operator's and host's bearer tokens first on theirs.
    if access in (Access.SHOPPER, Access.SIGNED_IN, Access.FRANCHISEE):
        actor = await session_actor(request)
        if actor is not None and _grants(actor, access, merchant, request):
            request[ACTOR] = actor
            return
    if merchant is not None and await store.is_operator_token(merchant, token):
        request[ACTOR] = Actor(role=Role.HQ_OPERATOR, merchant=merchant)
        return
    show_id = request.match_info.get("show")
    host = access is Access.HOST and show_id is not None and merchant is not None
    if host and await store.is_host_token(ShowId(str(show_id)), token):
        assert merchant is not None
        request[ACTOR] = Actor(role=Role.HOST, merchant=merchant)
        return
    if access in (Access.OPERATOR, Access.HOST):
        actor = await session_actor(request)
        if actor is not None and _grants(actor, access, merchant, request):
            request[ACTOR] = actor
            return
    raise _unauthorized("these credentials do not grant access to this resource")


def _grants(
    actor: Actor, access: Access, merchant: MerchantId | None, request: web.Request
) -> bool:
    if access is Access.SIGNED_IN:
        return True
    if merchant is None or actor.merchant != merchant:
        return False
    match access:
        case Access.OPERATOR:
            return actor.role is Role.HQ_OPERATOR
        case Access.HOST:
            return actor.role in (Role.HQ_OPERATOR, Role.HOST)
        case Access.FRANCHISEE:
            branch = request.match_info.get("branch")
            return actor.role is Role.HQ_OPERATOR or (
                actor.role is Role.FRANCHISEE and actor.branch == branch
            )
        case Access.SHOPPER:
            return actor.role is Role.SHOPPER
        case Access.PUBLIC | Access.SIGNED_IN:
            return True


async def _merchant_in_path(request: web.Request) -> MerchantId | None:
    """The merchant that owns what the path names: itself, a show, or a branch."""
    store = request.app[READS]
    if "merchant" in request.match_info:
        return MerchantId(request.match_info["merchant"])
    if "show" in request.match_info:
        show = await store.show(ShowId(request.match_info["show"]))
        return None if show is None else show.merchant
    if "branch" in request.match_info:
        branch = await store.branch(BranchId(request.match_info["branch"]))
        return None if branch is None else branch.merchant
    return None


def _unauthorized(message: str) -> BadInput:
    return BadInput("Authorization", message, status=401)
