"""The demo brand `lianbo demo` seeds: a tea chain in Shanghai, ready to go live.

Four branches with real street addresses and coordinates, a catalog with SKUs and
stock in every branch, money terms, one scheduled show, and staff to sign in with: an
HQ operator, a host and one franchisee per branch, each with a fresh random password
(printed once; only scrypt hashes are stored). Everything is made the way the API makes
it (streamserver/provisioning.py).
"""

from __future__ import annotations

import secrets
from typing import Final

from commerce.access import Role
from commerce.catalog import Branch, CashbackFunder, Merchant, Terms
from commerce.ids import Amount, RateBp
from commerce.shows import Show
from commerce.values import value
from streamserver import provisioning
from streamserver.store.port import Store

MERCHANT_NAME: Final = "Cha Li Tea 茶里"
EMAIL_DOMAIN: Final = "chali.example"  # RFC 6761: .example never delivers mail
OPERATOR_EMAIL: Final = f"hq@{EMAIL_DOMAIN}"
HOST_EMAIL: Final = f"host@{EMAIL_DOMAIN}"
SHOW_TITLE: Final = "Autumn launch: osmanthus oolong"

# name, email local part, address, lat, lng
BRANCHES: Final = (
    ("Jing'an Temple", "jingan", "1699 Nanjing West Rd, Jing'an", 31.2239, 121.4459),
    ("Xujiahui", "xujiahui", "1 Hongqiao Rd, Xuhui", 31.1950, 121.4370),
    ("Lujiazui", "lujiazui", "8 Century Ave, Pudong", 31.2397, 121.4998),
    ("Wujiaochang", "wujiaochang", "600 Handan Rd, Yangpu", 31.2990, 121.5140),
)
# product, [(sku, list price in fen)], units received per branch (in BRANCHES' order)
PRODUCTS: Final = (
    ("Osmanthus oolong", (("250 g tin", 6800), ("500 g gift box", 12800)), (40, 25, 30, 12)),
    ("Jasmine dragon pearls", (("100 g", 5800),), (30, 20, 0, 15)),
    ("Menghai pu'er cake 2019", (("357 g", 19800),), (6, 4, 8, 2)),
    ("Glass gongfu teapot", (("600 ml", 8900),), (10, 10, 10, 10)),
)
TERMS: Final = Terms(
    commission_rate_bp=RateBp(1000),
    cashback_rate_bp=RateBp(300),
    cashback_funder=CashbackFunder.HQ,
)


@value
class Credential:
    role: Role
    email: str
    password: str
    branch: Branch | None = None


@value(kw_only=True)
class Demo:
    merchant: Merchant
    operator_token: str
    branches: tuple[Branch, ...]
    show: Show
    host_token: str
    credentials: tuple[Credential, ...]


class AlreadySeeded(Exception):
    """The demo's operator exists already in this store."""


def new_password() -> str:
    return secrets.token_urlsafe(12)  # 16 characters, 96 random bits


async def seed_demo(store: Store) -> Demo:
    """Create the demo brand. Raises AlreadySeeded if this store has it already."""
    if await store.users_named(OPERATOR_EMAIL):
        raise AlreadySeeded(OPERATOR_EMAIL)
    merchant, operator_token = await provisioning.create_merchant(store, MERCHANT_NAME)
    await store.set_terms(merchant.id, TERMS)
    branches = []
    for name, _, address, lat, lng in BRANCHES:
        branch = await provisioning.create_branch(
            store, merchant.id, name, address=address, lat=lat, lng=lng
        )
        branches.append(branch)
    for product_name, skus, received in PRODUCTS:
        priced = [(sku_name, Amount(price)) for sku_name, price in skus]
        _, made = await provisioning.create_product(store, merchant.id, product_name, priced)
        for sku in made:
            for branch, qty in zip(branches, received, strict=True):
                if qty:
                    await provisioning.receive_stock(store, merchant.id, branch.id, sku.id, qty)
    show, host_token = await provisioning.create_show(store, merchant.id, SHOW_TITLE)
    staff = [
        Credential(Role.HQ_OPERATOR, OPERATOR_EMAIL, new_password()),
        Credential(Role.HOST, HOST_EMAIL, new_password()),
    ]
    for branch, (_, local, *_) in zip(branches, BRANCHES, strict=True):
        staff.append(Credential(Role.FRANCHISEE, f"{local}@{EMAIL_DOMAIN}", new_password(), branch))
    for person in staff:
        branch_id = None if person.branch is None else person.branch.id
        user = await provisioning.create_user(
            store, merchant.id, person.email, person.password, person.role, branch_id
        )
        assert user is not None, "a new merchant has no users yet"
    return Demo(
        merchant=merchant,
        operator_token=operator_token,
        branches=tuple(branches),
        show=show,
        host_token=host_token,
        credentials=tuple(staff),
    )
