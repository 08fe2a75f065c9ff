"""What the consoles show of selling: the live board of branches, a branch's sales over
time, the pace of orders per SKU, and which show the consoles follow.

Pure: facts in, values out; the caller passes `now` and never gets a clock from here.
"Sales" on the board are orders as they are placed, the live figure during a show: an
order counts with its total from the moment it is accepted unless it was cancelled,
expired or refunded. What the ledger says (paid at handover, less commission and
cashback) is `ledger.statement`, shown beside it as "settled".
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from commerce.catalog import Branch
from commerce.ids import Amount, BranchId, OrderId, SkuId
from commerce.orders import Order, OrderState
from commerce.shows import Show, ShowStatus
from commerce.values import value

NOT_COUNTED: Final = frozenset({OrderState.CANCELLED, OrderState.EXPIRED, OrderState.REFUNDED})
# Chart buckets are one of these lengths, the shortest that keeps the chart readable.
BUCKET_LENGTHS_MS: Final = tuple(m * 60_000 for m in (1, 2, 5, 10, 15, 30, 60, 120, 240))
# The show the consoles follow: one on air first, then one that may come back, then next.
_FOLLOW_ORDER: Final = (ShowStatus.LIVE, ShowStatus.PAUSED, ShowStatus.SCHEDULED)


@value(kw_only=True)
class OrderFact:
    """The little the consoles count of one order, as it is now."""

    order: OrderId
    branch: BranchId  # the selling branch: the room it was placed in
    total: Amount
    state: OrderState
    placed_at_ms: int
    updated_at_ms: int
    lines: tuple[tuple[SkuId, int], ...] = ()

    @property
    def counts(self) -> bool:
        return self.state not in NOT_COUNTED


def fact_of(order: Order) -> OrderFact:
    return OrderFact(
        order=order.id,
        branch=order.branch,
        total=order.total,
        state=order.state,
        placed_at_ms=order.placed_at_ms,
        updated_at_ms=order.updated_at_ms,
        lines=tuple((line.sku, line.qty) for line in order.lines),
    )


def newer(current: OrderFact | None, incoming: OrderFact) -> bool:
    """Whether `incoming` may replace `current`: events can arrive twice or late (a
    snapshot read after the event), and an order's state never goes back in time."""
    return current is None or incoming.updated_at_ms >= current.updated_at_ms


@value(kw_only=True)
class BranchRow:
    branch: BranchId
    name: str
    is_open: bool
    viewers: int
    orders: int
    sales: Amount
    settled: Amount  # the ledger's sales of the period


@value(kw_only=True)
class Totals:
    viewers: int
    orders: int
    sales: Amount
    settled: Amount


@value
class Board:
    rows: tuple[BranchRow, ...]  # ranked: most sales first
    totals: Totals


def board(
    branches: Sequence[Branch],
    facts: Iterable[OrderFact],
    *,
    since_ms: int,
    viewers: Mapping[BranchId, int],
    settled: Mapping[BranchId, int],
) -> Board:
    """Every branch of the merchant with its viewers and the orders placed since
    `since_ms`, ranked by sales, then orders, then viewers, then name."""
    orders: Counter[BranchId] = Counter()
    sales: Counter[BranchId] = Counter()
    for fact in facts:
        if fact.counts and fact.placed_at_ms >= since_ms:
            orders[fact.branch] += 1
            sales[fact.branch] += fact.total
    rows = [
        BranchRow(
            branch=b.id,
            name=b.name,
            is_open=b.is_open,
            viewers=viewers.get(b.id, 0),
            orders=orders[b.id],
            sales=Amount(sales[b.id]),
            settled=Amount(settled.get(b.id, 0)),
        )
        for b in branches
    ]
    rows.sort(key=lambda r: (-r.sales, -r.orders, -r.viewers, r.name, r.branch))
    totals = Totals(
        viewers=sum(r.viewers for r in rows),
        orders=sum(r.orders for r in rows),
        sales=Amount(sum(r.sales for r in rows)),
        settled=Amount(sum(r.settled for r in rows)),
    )
    return Board(tuple(rows), totals)


@value
class Series:
    """Sales per time bucket: bucket i covers [start_ms + i*bucket_ms, + bucket_ms)."""

    start_ms: int
    bucket_ms: int
    amounts: tuple[Amount, ...]


def sales_series(
    facts: Iterable[OrderFact],
    branch: BranchId,
    *,
    since_ms: int,
    now_ms: int,
    buckets_max: int = 48,
) -> Series:
    """The branch's sales over time, from its first counted order since `since_ms` to
    `now_ms`, in buckets of one of `BUCKET_LENGTHS_MS` (the shortest that fits)."""
    assert buckets_max >= 1
    counted = [
        f for f in facts if f.branch == branch and f.counts and since_ms <= f.placed_at_ms <= now_ms
    ]
    if not counted:
        return Series(now_ms, BUCKET_LENGTHS_MS[0], ())
    first = min(f.placed_at_ms for f in counted)
    bucket_ms = next(
        (b for b in BUCKET_LENGTHS_MS if _buckets(first, now_ms, b) <= buckets_max),
        BUCKET_LENGTHS_MS[-1],
    )
    start = first - first % bucket_ms
    count = _buckets(first, now_ms, bucket_ms)
    if count > buckets_max:  # longer than the longest buckets allow: keep the latest
        start += (count - buckets_max) * bucket_ms
        count = buckets_max
    amounts = [0] * count
    for fact in counted:
        i = (fact.placed_at_ms - start) // bucket_ms
        if 0 <= i < count:
            amounts[i] += fact.total
    return Series(start, bucket_ms, tuple(Amount(a) for a in amounts))


def _buckets(first_ms: int, now_ms: int, bucket_ms: int) -> int:
    return (now_ms - (first_ms - first_ms % bucket_ms)) // bucket_ms + 1


@value
class Pace:
    orders: int  # orders holding the SKU placed within the window
    units: int


def pace(facts: Iterable[OrderFact], *, now_ms: int, window_ms: int) -> dict[SkuId, Pace]:
    """Per SKU, the counted orders placed in the last `window_ms` and their units."""
    orders: Counter[SkuId] = Counter()
    units: dict[SkuId, int] = defaultdict(int)
    for fact in facts:
        if fact.counts and now_ms - window_ms < fact.placed_at_ms <= now_ms:
            for sku, qty in fact.lines:
                orders[sku] += 1
                units[sku] += qty
    return {sku: Pace(orders[sku], units[sku]) for sku in orders}


def followed_show(shows: Sequence[Show]) -> Show | None:
    """The show a branch console links to and the board follows, from the merchant's
    shows listed newest first: the newest live one, else paused, else scheduled, else
    the newest (ended) show; None when there is no show at all."""
    for status in _FOLLOW_ORDER:
        for show in shows:
            if show.status is status:
                return show
    return shows[0] if shows else None
