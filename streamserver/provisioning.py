"""Creating a merchant's things: brand, branches, catalog, stock, shows and staff.

The one way each is made, shared by the HTTP handlers (after they have parsed the
request) and by `lianbo init` / `lianbo demo` (which write to the store with no server
running). Ids and secrets are minted here, at the edge; nothing here parses input.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from commerce.access import Role
from commerce.catalog import Branch, Merchant, Product, Sku
from commerce.ids import Amount, BranchId, MerchantId, ProductId, ShowId, SkuId
from commerce.plan import MoveStock, Plan, StockMove
from commerce.shows import Show
from streamserver.ids import new_id, new_token
from streamserver.passwords import hash_password
from streamserver.store.port import Applied, Store, User


async def create_merchant(store: Store, name: str) -> tuple[Merchant, str]:
    """A new merchant and its HQ operator token (the caller shows the token once)."""
    merchant = Merchant(MerchantId(new_id("merchant")), name)
    token = new_token()
    await store.create_merchant(merchant, token)
    return merchant, token


async def create_branch(
    store: Store,
    merchant: MerchantId,
    name: str,
    *,
    address: str = "",
    lat: float | None = None,
    lng: float | None = None,
) -> Branch:
    branch = Branch(
        id=BranchId(new_id("branch")),
        merchant=merchant,
        name=name,
        address=address,
        lat=lat,
        lng=lng,
    )
    await store.create_branch(branch)
    return branch


async def create_product(
    store: Store, merchant: MerchantId, name: str, skus: Sequence[tuple[str, Amount]]
) -> tuple[Product, list[Sku]]:
    """A product with its SKUs, given as (name, list price) pairs."""
    product = Product(id=ProductId(new_id("product")), merchant=merchant, name=name)
    made = [
        Sku(
            id=SkuId(new_id("sku")),
            product=product.id,
            merchant=merchant,
            name=sku_name,
            price=price,
        )
        for sku_name, price in skus
    ]
    await store.put_product(product)
    for sku in made:
        await store.put_sku(sku)
    return product, made


async def receive_stock(
    store: Store, merchant: MerchantId, branch: BranchId, sku: SkuId, qty: int
) -> Applied:
    """Stock arriving at a branch; the caller tells the stock feed, if a server runs."""
    result = await store.apply(
        merchant, Plan((), (MoveStock(branch, sku, qty, StockMove.RECEIVE),))
    )
    assert isinstance(result, Applied), "a receipt has no guards"
    return result


async def create_show(store: Store, merchant: MerchantId, title: str) -> tuple[Show, str]:
    """A scheduled show and its host token (the WHIP stream key, shown once)."""
    show = Show(id=ShowId(new_id("show")), merchant=merchant, title=title)
    token = new_token()
    await store.create_show(show, token)
    return show, token


async def create_user(
    store: Store,
    merchant: MerchantId,
    username: str,
    password: str,
    role: Role,
    branch: BranchId | None = None,
) -> User | None:
    """A staff account with a scrypt-hashed password; None if the name is taken there."""
    assert (role is Role.FRANCHISEE) == (branch is not None), "a franchisee runs one branch"
    user = User(
        merchant=merchant,
        username=username,
        role=role,
        branch=branch,
        password_hash=await asyncio.to_thread(hash_password, password),
    )
    return user if await store.create_user(user) else None
