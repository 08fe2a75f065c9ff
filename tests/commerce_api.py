"""Building a trading merchant over the real HTTP API, for tests that buy and fulfil."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from tests.conftest import Seeded, Server, ServerProcess

PASSWORD = "correct horse battery"

# Shanghai: the first branch sits downtown, the second out east in Pudong.
PLACES = [(31.2304, 121.4737), (31.2215, 121.5447)]


@dataclass
class Shop:
    """A seeded merchant that sells: a SKU in stock at both branches, staff, shoppers."""

    seeded: Seeded
    sku: str
    franchisee: list[dict[str, str]]  # auth headers per branch
    price: int

    @property
    def operator(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.seeded.operator_token}"}

    def room_orders(self, branch: int) -> str:
        return f"/api/shows/{self.seeded.show}/rooms/{self.seeded.branches[branch]}/orders"


async def call(
    server: Server | ServerProcess,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    async with server.http.request(method, server.url(path), json=body, headers=headers) as r:
        payload = await r.json() if r.content_type == "application/json" else await r.text()
        return r.status, payload


async def ok(
    server: Server | ServerProcess,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> Any:
    status, payload = await call(server, method, path, body, headers)
    assert status in (200, 201), (method, path, status, payload)
    return payload


async def open_shop(
    server: Server | ServerProcess,
    seeded: Seeded,
    stock: tuple[int, int] = (10, 10),
    price: int = 1999,
) -> Shop:
    op = {"Authorization": f"Bearer {seeded.operator_token}"}
    m = f"/api/merchants/{seeded.merchant}"
    for branch, (lat, lng) in zip(seeded.branches, PLACES, strict=False):
        await ok(server, "PATCH", f"{m}/branches/{branch}", {"lat": lat, "lng": lng}, op)
    await ok(server, "PUT", f"{m}/terms", {"commission_rate_bp": 1000, "cashback_rate_bp": 500}, op)
    product = await ok(
        server,
        "POST",
        f"{m}/products",
        {"name": "Oolong", "skus": [{"name": "250 g", "price": price}]},
        op,
    )
    sku = product["skus"][0]["id"]
    for branch, qty in zip(seeded.branches, stock, strict=False):
        if qty:
            await ok(
                server,
                "POST",
                f"{m}/stock-receipts",
                {"branch": branch, "sku": sku, "qty": qty},
                op,
            )
    franchisee = []
    for i, branch in enumerate(seeded.branches):
        user = {
            "username": f"store{i}",
            "password": PASSWORD,
            "role": "franchisee",
            "branch": branch,
        }
        await ok(server, "POST", f"{m}/users", user, op)
        session = await ok(
            server,
            "POST",
            "/api/sessions",
            {"merchant": seeded.merchant, "username": f"store{i}", "password": PASSWORD},
        )
        franchisee.append({"Authorization": f"Bearer {session['token']}"})
    return Shop(seeded, sku, franchisee, price)


async def new_shopper(
    server: Server | ServerProcess, shop: Shop, name: str = "Mei"
) -> dict[str, str]:
    session = await ok(
        server, "POST", f"/api/merchants/{shop.seeded.merchant}/shoppers", {"name": name}
    )
    return {"Authorization": f"Bearer {session['token']}"}


def buying(shopper: dict[str, str], key: str | None = None) -> dict[str, str]:
    return {**shopper, "Idempotency-Key": key or uuid.uuid4().hex}
