"""The consoles' figures as plain values: the ranked board, sales over time, order pace,
and the show the consoles follow."""

from __future__ import annotations

from dataclasses import replace

from commerce.board import (
    OrderFact,
    Pace,
    board,
    followed_show,
    newer,
    pace,
    sales_series,
)
from commerce.catalog import Branch
from commerce.ids import Amount, BranchId, MerchantId, OrderId, ShowId, SkuId
from commerce.orders import OrderState
from commerce.shows import Show, ShowStatus

M = MerchantId("m_one")
XUHUI = Branch(id=BranchId("b_xuhui"), merchant=M, name="Xuhui")
PUDONG = Branch(id=BranchId("b_pudong"), merchant=M, name="Pudong")
JINGAN = Branch(id=BranchId("b_jingan"), merchant=M, name="Jing'an", is_open=False)
TEA, CAKE = SkuId("k_tea"), SkuId("k_cake")
T0 = 1_700_000_000_000  # some moment; tests align it to their bucket themselves
MINUTE = 60_000


def fact(
    n: int,
    branch: Branch,
    total: int,
    *,
    at_ms: int = T0,
    state: OrderState = OrderState.PLACED,
    lines: tuple[tuple[SkuId, int], ...] = ((TEA, 1),),
) -> OrderFact:
    return OrderFact(
        order=OrderId(f"o_{n}"),
        branch=branch.id,
        total=Amount(total),
        state=state,
        placed_at_ms=at_ms,
        updated_at_ms=at_ms,
        lines=lines,
    )


def test_the_board_ranks_branches_by_sales_and_adds_up_the_totals() -> None:
    facts = [
        fact(1, XUHUI, 1000),
        fact(2, PUDONG, 1500),
        fact(3, PUDONG, 500),
        fact(4, XUHUI, 900),
    ]
    result = board(
        [XUHUI, PUDONG, JINGAN],
        facts,
        since_ms=T0,
        viewers={XUHUI.id: 7, JINGAN.id: 2},
        settled={PUDONG.id: 1200},
    )
    assert [(r.name, r.orders, r.sales, r.viewers, r.settled) for r in result.rows] == [
        ("Pudong", 2, 2000, 0, 1200),
        ("Xuhui", 2, 1900, 7, 0),
        ("Jing'an", 0, 0, 2, 0),
    ]
    assert result.rows[2].is_open is False
    assert (result.totals.viewers, result.totals.orders) == (9, 4)
    assert (result.totals.sales, result.totals.settled) == (3900, 1200)


def test_cancelled_expired_and_refunded_orders_and_earlier_ones_are_not_sales() -> None:
    facts = [
        fact(1, XUHUI, 1000),
        fact(2, XUHUI, 2000, state=OrderState.CANCELLED),
        fact(3, XUHUI, 3000, state=OrderState.EXPIRED),
        fact(4, XUHUI, 4000, state=OrderState.REFUNDED),
        fact(5, XUHUI, 5000, state=OrderState.COMPLETED),
        fact(6, XUHUI, 6000, at_ms=T0 - 1),
    ]
    row = board([XUHUI], facts, since_ms=T0, viewers={}, settled={}).rows[0]
    assert (row.orders, row.sales) == (2, 6000)


def test_ties_rank_by_orders_then_viewers_then_name() -> None:
    facts = [fact(1, XUHUI, 1000), fact(2, PUDONG, 500), fact(3, PUDONG, 500)]
    rows = board([XUHUI, PUDONG, JINGAN], facts, since_ms=0, viewers={}, settled={}).rows
    assert [r.name for r in rows] == ["Pudong", "Xuhui", "Jing'an"]
    tied = board([XUHUI, PUDONG], [], since_ms=0, viewers={XUHUI.id: 1}, settled={}).rows
    assert [r.name for r in tied] == ["Xuhui", "Pudong"]
    named = board([XUHUI, PUDONG], [], since_ms=0, viewers={}, settled={}).rows
    assert [r.name for r in named] == ["Pudong", "Xuhui"]


def test_a_later_fact_replaces_an_earlier_one_never_the_other_way() -> None:
    placed = fact(1, XUHUI, 1000)
    ready = replace(placed, state=OrderState.READY, updated_at_ms=T0 + 5)
    assert newer(None, placed)
    assert newer(placed, ready)
    assert not newer(ready, placed)
    assert newer(ready, ready)  # the same event twice changes nothing


def test_sales_over_time_fall_into_minute_buckets_from_the_first_sale() -> None:
    start = T0 - T0 % MINUTE
    facts = [
        fact(1, XUHUI, 100, at_ms=start + 10),
        fact(2, XUHUI, 200, at_ms=start + MINUTE - 1),
        fact(3, XUHUI, 400, at_ms=start + 2 * MINUTE),
        fact(4, PUDONG, 800, at_ms=start + MINUTE),  # another branch's
        fact(5, XUHUI, 1600, at_ms=start + MINUTE, state=OrderState.CANCELLED),
    ]
    series = sales_series(facts, XUHUI.id, since_ms=0, now_ms=start + 3 * MINUTE + 5)
    assert series.start_ms == start
    assert series.bucket_ms == MINUTE
    assert series.amounts == (300, 0, 400, 0)


def test_a_long_day_uses_longer_buckets_and_never_more_than_asked() -> None:
    hour = 60 * MINUTE
    start = T0 - T0 % hour
    facts = [fact(1, XUHUI, 100, at_ms=start), fact(2, XUHUI, 200, at_ms=start + 5 * hour)]
    series = sales_series(facts, XUHUI.id, since_ms=0, now_ms=start + 6 * hour, buckets_max=12)
    assert series.bucket_ms == 60 * MINUTE
    assert series.amounts == (100, 0, 0, 0, 0, 200, 0)
    assert len(sales_series(facts, XUHUI.id, since_ms=0, now_ms=start + 99 * hour).amounts) <= 48


def test_no_sales_is_an_empty_series() -> None:
    assert sales_series([], XUHUI.id, since_ms=0, now_ms=T0).amounts == ()
    late = [fact(1, XUHUI, 100, at_ms=T0)]
    assert sales_series(late, XUHUI.id, since_ms=T0 + 1, now_ms=T0 + 2).amounts == ()


def test_pace_counts_orders_and_units_per_sku_within_the_window() -> None:
    facts = [
        fact(1, XUHUI, 100, at_ms=T0 - 10, lines=((TEA, 2), (CAKE, 1))),
        fact(2, PUDONG, 100, at_ms=T0 - 30_000, lines=((TEA, 1),)),
        fact(3, PUDONG, 100, at_ms=T0 - MINUTE, lines=((TEA, 5),)),  # just outside
        fact(4, XUHUI, 100, at_ms=T0 - 5, lines=((CAKE, 3),), state=OrderState.CANCELLED),
    ]
    assert pace(facts, now_ms=T0, window_ms=MINUTE) == {TEA: Pace(2, 3), CAKE: Pace(1, 1)}


def test_the_consoles_follow_the_live_show_else_paused_else_scheduled_else_the_newest() -> None:
    def show(n: int, status: ShowStatus) -> Show:
        return Show(id=ShowId(f"s_{n}"), merchant=M, title=f"Show {n}", status=status)

    ended, scheduled, paused, live = (
        show(1, ShowStatus.ENDED),
        show(2, ShowStatus.SCHEDULED),
        show(3, ShowStatus.PAUSED),
        show(4, ShowStatus.LIVE),
    )
    assert followed_show([]) is None
    assert followed_show([scheduled, live, ended]) == live
    assert followed_show([scheduled, paused, ended]) == paused
    assert followed_show([scheduled, ended]) == scheduled
    assert followed_show([ended, show(0, ShowStatus.ENDED)]) == ended
