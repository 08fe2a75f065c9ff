"""What the consoles' frames say: a show with its room links, the ranked board, a sales
series, and the order fact an order event announces (`effects.after_apply`). Pure
shaping of values; the feed (consolefeed.py) decides when each goes out.
"""

from __future__ import annotations

from typing import Any

from commerce import board
from commerce.board import OrderFact
from commerce.ids import Amount, BranchId, OrderId, SkuId
from commerce.orders import OrderState
from commerce.shows import Show
from streamserver.api.shows import room_urls, show_urls
from streamserver.bus.port import Event


def present_show(show: Show | None, branch: BranchId | None) -> dict[str, Any] | None:
    if show is None:
        return None
    presented: dict[str, Any] = {"id": show.id, "title": show.title, "status": show.status}
    presented |= show_urls(show.id)
    if branch is not None:
        presented["room"] = room_urls(show.id, branch)
    return presented


def present_board(value: board.Board, since_ms: int) -> dict[str, Any]:
    rows = [
        {
            "rank": i,
            "branch": r.branch,
            "name": r.name,
            "is_open": r.is_open,
            "viewers": r.viewers,
            "orders": r.orders,
            "sales": r.sales,
            "settled": r.settled,
        }
        for i, r in enumerate(value.rows, start=1)
    ]
    t = value.totals
    totals = {"viewers": t.viewers, "orders": t.orders, "sales": t.sales, "settled": t.settled}
    return {"since_ms": since_ms, "rows": rows, "totals": totals}


def present_series(series: board.Series) -> dict[str, Any]:
    return {
        "start_ms": series.start_ms,
        "bucket_ms": series.bucket_ms,
        "amounts": list(series.amounts),
    }


def fact_from_event(event: Event) -> OrderFact | None:
    """The fact an order event announces (effects.after_apply), None if it is not one."""
    try:
        lines = tuple((SkuId(str(sku)), int(qty)) for sku, qty in event["lines"])
        return OrderFact(
            order=OrderId(str(event["order"])),
            branch=BranchId(str(event["branch"])),
            total=Amount(int(event["total"])),
            state=OrderState(event["state"]),
            placed_at_ms=int(event["placed_at_ms"]),
            updated_at_ms=int(event["updated_at_ms"]),
            lines=lines,
        )
    except (KeyError, TypeError, ValueError):
        return None
