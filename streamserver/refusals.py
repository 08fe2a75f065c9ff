"""The one table from a core `Reason` to an HTTP status, and the JSON of a refusal."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from commerce.plan import Reason, Refusal
from streamserver.responses import json_response

STATUS: Final[dict[Reason, int]] = {
    Reason.KEY_REUSED: 409,
    Reason.UNKNOWN_SKU: 400,
    Reason.BRANCH_CLOSED: 409,
    Reason.FLASH_ENDED: 409,
    Reason.OVER_LIMIT: 409,
    Reason.SOLD_OUT: 409,
    Reason.NO_BRANCH_CAN_SHIP: 409,
    Reason.INSUFFICIENT_BALANCE: 409,
    Reason.STORED_VALUE_OVER_TOTAL: 400,
    Reason.NOT_ALLOWED_IN_STATE: 409,
    Reason.WRONG_PICKUP_CODE: 400,
    Reason.NOT_EXPIRED: 409,
    Reason.FORBIDDEN: 403,
}

MESSAGES: Final[dict[Reason, str]] = {
    Reason.KEY_REUSED: "this Idempotency-Key was already used for another order",
    Reason.UNKNOWN_SKU: "no such product",
    Reason.BRANCH_CLOSED: "this store is closed for pickups",
    Reason.FLASH_ENDED: "the flash sale has ended",
    Reason.OVER_LIMIT: "over the limit per shopper",
    Reason.SOLD_OUT: "sold out",
    Reason.NO_BRANCH_CAN_SHIP: "no store can deliver all of this",
    Reason.INSUFFICIENT_BALANCE: "not enough stored value",
    Reason.STORED_VALUE_OVER_TOTAL: "more stored value than the order costs",
    Reason.NOT_ALLOWED_IN_STATE: "not possible in the order's current state",
    Reason.WRONG_PICKUP_CODE: "wrong pickup code",
    Reason.NOT_EXPIRED: "the order has not expired",
    Reason.FORBIDDEN: "not allowed for you",
}


def refusal_response(refusal: Refusal) -> web.Response:
    body: dict[str, str] = {
        "error": refusal.reason,
        "message": refusal.detail or MESSAGES[refusal.reason],
    }
    if refusal.field is not None:
        body["field"] = refusal.field
    return json_response(body, status=STATUS[refusal.reason])
