"""The unit price at the moment of buying: list price, or the card's live price while it runs."""

from __future__ import annotations

from typing import Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commerce.catalog import Sku
from commerce.ids import Amount, MerchantId, ProductId, SkuId
from commerce.pricing import Offer, unit_price

NOW_MS: Final = 1_750_000_000_000
TEA = Sku(
    id=SkuId("k_tea"),
    product=ProductId("p_tea"),
    merchant=MerchantId("m_brand"),
    name="tea",
    price=Amount(1999),
)


def test_without_an_offer_the_list_price_applies() -> None:
    assert unit_price(TEA, None, NOW_MS) == 1999


def test_an_open_ended_offer_sets_the_price_at_any_time() -> None:
    offer = Offer(sku=TEA.id, price=Amount(1500))
    assert unit_price(TEA, offer, NOW_MS) == 1500
    assert unit_price(TEA, offer, NOW_MS * 2) == 1500


def test_an_offer_may_price_above_the_list_price() -> None:
    # The card's price is what the shopper tapped; the core does not second-guess it.
    assert unit_price(TEA, Offer(sku=TEA.id, price=Amount(2500)), NOW_MS) == 2500


@pytest.mark.parametrize(
    ("now_ms", "price"), [(NOW_MS - 1, 1200), (NOW_MS, None), (NOW_MS + 1, None)]
)
def test_a_flash_price_holds_until_its_end_and_then_the_sale_is_over(
    now_ms: int, price: int | None
) -> None:
    offer = Offer(sku=TEA.id, price=Amount(1200), ends_at_ms=NOW_MS, limit_per_shopper=2)
    assert unit_price(TEA, offer, now_ms) == price


def test_after_a_flash_sale_ends_the_list_price_does_not_come_back() -> None:
    # FLASH_ENDED, never a silent charge at another price than the card showed.
    offer = Offer(sku=TEA.id, price=Amount(1200), ends_at_ms=NOW_MS)
    assert unit_price(TEA, offer, NOW_MS + 3_600_000) is None


@given(ends_at_ms=st.integers(0, 2**62), now_ms=st.integers(0, 2**62), price=st.integers(0, 10**9))
def test_a_flash_price_applies_exactly_before_its_end(
    ends_at_ms: int, now_ms: int, price: int
) -> None:
    offer = Offer(sku=TEA.id, price=Amount(price), ends_at_ms=ends_at_ms)
    assert unit_price(TEA, offer, now_ms) == (price if now_ms < ends_at_ms else None)
