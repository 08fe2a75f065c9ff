"""One walk over routes.py: every protected route, called as every credential there is,
answers 401 to each caller its declared access does not admit."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from streamserver.auth import Access
from streamserver.routes import ROUTES, Route
from tests.conftest import Seeded, Server, seed


@dataclass(frozen=True)
class Caller:
    name: str
    headers: dict[str, str]


async def session_of(server: Server, path: str, body: dict[str, str]) -> dict[str, str]:
    async with server.http.post(server.url(path), json=body) as r:
        assert r.status == 201, await r.text()
        token = (await r.json())["token"]
    return {"Authorization": f"Bearer {token}"}


async def staff(
    server: Server, s: Seeded, username: str, role: str, branch: str | None
) -> dict[str, str]:
    body = {"username": username, "password": "correct horse battery", "role": role}
    if branch is not None:
        body["branch"] = branch
    auth = {"Authorization": f"Bearer {s.operator_token}"}
    async with server.http.post(
        server.url(f"/api/merchants/{s.merchant}/users"), json=body, headers=auth
    ) as r:
        assert r.status == 201, await r.text()
    credentials = {"merchant": s.merchant, "username": username, "password": body["password"]}
    return await session_of(server, "/api/sessions", credentials)


async def cast(server: Server, own: Seeded, other: Seeded) -> dict[str, Caller]:
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    callers = [
        Caller("nobody", {}),
        Caller("garbage token", bearer("not-a-token")),
        Caller("operator", bearer(own.operator_token)),
        Caller("hq user", await staff(server, own, "hq", "hq_operator", None)),
        Caller("host", bearer(own.host_token)),
        Caller("host user", await staff(server, own, "host", "host", None)),
        Caller("franchisee", await staff(server, own, "f0", "franchisee", own.branches[0])),
        Caller("other branch", await staff(server, own, "f1", "franchisee", own.branches[1])),
        Caller("shopper", await session_of(server, f"/api/merchants/{own.merchant}/shoppers", {})),
        Caller("other operator", bearer(other.operator_token)),
        Caller("other host", bearer(other.host_token)),
        Caller("other hq user", await staff(server, other, "hq", "hq_operator", None)),
        Caller(
            "other franchisee", await staff(server, other, "f0", "franchisee", other.branches[0])
        ),
        Caller(
            "other shopper",
            await session_of(server, f"/api/merchants/{other.merchant}/shoppers", {}),
        ),
    ]
    return {c.name: c for c in callers}


ADMITTED = {
    Access.OPERATOR: {"operator", "hq user"},
    Access.HOST: {"operator", "hq user", "host", "host user"},
    Access.FRANCHISEE: {"operator", "hq user", "franchisee"},
    Access.SHOPPER: {"shopper"},
    # Signed in as anyone; the handler then serves only its role (/api/me is a shopper's).
    Access.SIGNED_IN: {
        "hq user",
        "host user",
        "franchisee",
        "other branch",
        "shopper",
        "other hq user",
        "other franchisee",
        "other shopper",
    },
}
SHOPPER_ONLY = {"/api/me/orders", "/api/me/balance", "/api/me/orders/{order}/cancel"}
PROTECTED = [route for route in ROUTES if route.access is not Access.PUBLIC]


@pytest.mark.parametrize("route", PROTECTED, ids=lambda r: f"{r.method} {r.path}")
async def test_every_protected_route_refuses_every_caller_it_does_not_admit(
    server: Server, seeded: Seeded, route: Route
) -> None:
    other = await seed(server, branch_names=("Elsewhere",))
    callers = await cast(server, seeded, other)
    admitted = ADMITTED[route.access]
    if route.path in SHOPPER_ONLY:
        admitted = {"shopper", "other shopper"}
    path = route.path.format(
        merchant=seeded.merchant,
        show=seeded.show,
        branch=seeded.branches[0],
        session="nosuch",
        sku="k_nosuchsku0000",
        shopper="u_nosuchshopper0",
        order="o_nosuchorder000",
        action="ready",
        card="c_nosuchcard0000",
    )
    for caller in callers.values():
        headers = dict(caller.headers)
        if route.method == "POST" and route.path.startswith("/whip"):
            headers["Content-Type"] = "application/sdp"
        async with server.http.request(
            route.method, server.url(path), headers=headers, data=b"{}"
        ) as r:
            body = await r.text()
            if caller.name in admitted:
                assert r.status != 401, (caller.name, body)
            else:
                assert r.status == 401, (caller.name, body)
                assert r.headers["WWW-Authenticate"].startswith("Bearer")
            assert r.status < 500, (caller.name, body)
