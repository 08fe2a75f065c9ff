"""Product cards: what the host pins in a show, and how each branch room sees it.

A card carries the live price (a flash price or the list price), the flash end and
the per-shopper limit, shown alike in every room; each branch room renders it with
its own stock and whether it can hand it over here (pickup) or have it delivered
(some open branch holds it). Pinning a card sets the SKU's live `Offer`, so what a
shopper pays is what the card showed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from commerce.catalog import Branch, Sku
from commerce.ids import Amount, BranchId, CardId, ShowId, SkuId
from commerce.pricing import Offer
from commerce.values import value


@value(kw_only=True)
class Card:
    id: CardId
    show: ShowId
    sku: SkuId
    title: str  # product and variant, as the host wants it read
    list_price: Amount
    price: Amount  # what a shopper pays while the card is up
    ends_at_ms: int | None = None  # flash end
    limit_per_shopper: int | None = None
    pinned_at_ms: int

    def offer(self) -> Offer:
        return Offer(
            sku=self.sku,
            price=self.price,
            ends_at_ms=self.ends_at_ms,
            limit_per_shopper=self.limit_per_shopper,
        )


def pin(card_id: CardId, show: ShowId, sku: Sku, title: str, now_ms: int) -> Card:
    """A card for `sku` at its list price; `price`, end and limit are set with `replace`."""
    return Card(
        id=card_id,
        show=show,
        sku=sku.id,
        title=title or sku.name,
        list_price=sku.price,
        price=sku.price,
        pinned_at_ms=now_ms,
    )


@value(kw_only=True)
class CardView:
    """A card as one branch room shows it."""

    card: Card
    available_here: int
    pickup: bool  # this branch is open and holds the SKU
    delivery: bool  # some open, locatable branch holds it
    ended: bool  # the flash sale is over


def card_view(
    card: Card,
    room: Branch,
    branches: Sequence[Branch],
    available: Mapping[tuple[BranchId, SkuId], int],
    now_ms: int,
) -> CardView:
    here = available.get((room.id, card.sku), 0)
    delivery = any(
        b.is_open and b.lat is not None and available.get((b.id, card.sku), 0) > 0 for b in branches
    )
    return CardView(
        card=card,
        available_here=here,
        pickup=room.is_open and here > 0,
        delivery=delivery,
        ended=card.ends_at_ms is not None and now_ms >= card.ends_at_ms,
    )
