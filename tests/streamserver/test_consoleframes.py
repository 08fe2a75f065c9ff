"""The consoles' frame shapes and the order facts read from bus events, as plain values."""

from __future__ import annotations

from typing import Any

from commerce.board import OrderFact
from commerce.ids import Amount, BranchId, MerchantId, OrderId, ShowId, SkuId
from commerce.orders import OrderState
from commerce.shows import Show, ShowStatus
from streamserver.realtime.consoleframes import fact_from_event, present_show

EVENT: dict[str, Any] = {
    "type": "order",
    "shopper": "u_aaaaaaaaaaaaaaaa",
    "order": "o_aaaaaaaaaaaaaaaa",
    "state": "ready",
    "branch": "b_aaaaaaaaaaaaaaaa",
    "ship_from": "b_aaaaaaaaaaaaaaaa",
    "cash_due": 1999,
    "total": 3998,
    "placed_at_ms": 1_000,
    "updated_at_ms": 2_000,
    "lines": [["k_aaaaaaaaaaaaaaaa", 2]],
}


def test_an_order_event_becomes_the_fact_the_consoles_count() -> None:
    assert fact_from_event(EVENT) == OrderFact(
        order=OrderId("o_aaaaaaaaaaaaaaaa"),
        branch=BranchId("b_aaaaaaaaaaaaaaaa"),
        total=Amount(3998),
        state=OrderState.READY,
        placed_at_ms=1_000,
        updated_at_ms=2_000,
        lines=((SkuId("k_aaaaaaaaaaaaaaaa"), 2),),
    )


def test_an_event_missing_or_mangling_a_field_is_no_fact() -> None:
    for broken in (
        {k: v for k, v in EVENT.items() if k != "total"},
        {**EVENT, "state": "teleported"},
        {**EVENT, "lines": [["k_x"]]},
        {**EVENT, "placed_at_ms": "soon"},
        {**EVENT, "lines": None},
    ):
        assert fact_from_event(broken) is None, broken


def test_a_branch_console_gets_its_room_links_and_hq_the_shows_own() -> None:
    show = Show(
        id=ShowId("s_x"), merchant=MerchantId("m_x"), title="Launch", status=ShowStatus.LIVE
    )
    hq = present_show(show, None)
    assert hq == {
        "id": "s_x",
        "title": "Launch",
        "status": "live",
        "host_url": "/shows/s_x/host",
        "whip_url": "/whip/s_x",
    }
    branch = present_show(show, BranchId("b_y"))
    assert branch is not None
    assert branch["room"] == {"url": "/shows/s_x/rooms/b_y", "whep_url": "/whep/s_x/b_y"}
    assert present_show(None, BranchId("b_y")) is None
