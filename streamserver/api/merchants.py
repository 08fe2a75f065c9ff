"""Merchants and their branches."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from commerce.catalog import Branch, Merchant
from commerce.ids import MerchantId
from streamserver import provisioning
from streamserver.badinput import coordinate_field, read_json_object, text_field
from streamserver.keys import STORE
from streamserver.responses import json_response
from streamserver.store import codec

NAME_LENGTH_MAX = 120
ADDRESS_LENGTH_MAX = 300


def present_merchant(merchant: Merchant) -> dict[str, Any]:
    return {"id": merchant.id, "name": merchant.name}


def present_branch(branch: Branch) -> dict[str, Any]:
    return codec.branch_to_dict(branch)


async def post_merchant(request: web.Request) -> web.Response:
    """Create a merchant; the answer holds its HQ operator token, shown only this once."""
    data = await read_json_object(request)
    name = text_field(data, "name", length_max=NAME_LENGTH_MAX)
    merchant, token = await provisioning.create_merchant(request.app[STORE], name)
    return json_response(
        {"merchant": present_merchant(merchant), "operator_token": token}, status=201
    )


async def get_merchant(request: web.Request) -> web.Response:
    store = request.app[STORE]
    merchant = await store.merchant(MerchantId(request.match_info["merchant"]))
    if merchant is None:
        raise web.HTTPNotFound
    branches = await store.branches(merchant.id)
    return json_response(
        {"merchant": present_merchant(merchant), "branches": [present_branch(b) for b in branches]}
    )


async def post_branch(request: web.Request) -> web.Response:
    data = await read_json_object(request)
    branch = await provisioning.create_branch(
        request.app[STORE],
        MerchantId(request.match_info["merchant"]),
        text_field(data, "name", length_max=NAME_LENGTH_MAX),
        address=text_field(data, "address", length_max=ADDRESS_LENGTH_MAX, required=False),
        lat=coordinate_field(data, "lat", bound=90),
        lng=coordinate_field(data, "lng", bound=180),
    )
    return json_response(present_branch(branch), status=201)


async def get_branches(request: web.Request) -> web.Response:
    branches = await request.app[STORE].branches(MerchantId(request.match_info["merchant"]))
    return json_response({"branches": [present_branch(b) for b in branches]})
