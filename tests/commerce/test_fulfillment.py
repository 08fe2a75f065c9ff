"""Great-circle distance and the choice of the branch that ships a delivery."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commerce.catalog import Branch
from commerce.fulfillment import EARTH_RADIUS_M, Coordinates, distance_m, holds_all, ship_from
from commerce.ids import BranchId, MerchantId, SkuId

PEOPLES_SQUARE: Final = Coordinates(31.2304, 121.4737)
PUDONG_AIRPORT: Final = Coordinates(31.1443, 121.8083)

TEA, CAKE = SkuId("k_tea"), SkuId("k_cake")
MERCHANT: Final = MerchantId("m_brand")


def cosine_law_m(a: Coordinates, b: Coordinates) -> float:
    """The spherical law of cosines: another formula for the same great circle."""
    phi1, phi2 = math.radians(a.lat), math.radians(b.lat)
    cos_angle = math.sin(phi1) * math.sin(phi2) + math.cos(phi1) * math.cos(phi2) * math.cos(
        math.radians(b.lng - a.lng)
    )
    return EARTH_RADIUS_M * math.acos(max(-1.0, min(1.0, cos_angle)))


def test_peoples_square_to_pudong_airport_is_about_33_km() -> None:
    d = distance_m(PEOPLES_SQUARE, PUDONG_AIRPORT)
    assert 30_000 < d < 40_000
    assert d == pytest.approx(33_237.5, abs=1.0)
    assert d == pytest.approx(cosine_law_m(PEOPLES_SQUARE, PUDONG_AIRPORT), abs=0.01)


def test_one_degree_of_latitude_is_about_111_km() -> None:
    d = distance_m(Coordinates(30.0, 121.0), Coordinates(31.0, 121.0))
    assert d == pytest.approx(EARTH_RADIUS_M * math.pi / 180, rel=1e-12)
    assert d == pytest.approx(111_195, abs=1)


def test_antipodes_are_half_the_earth_apart() -> None:
    d = distance_m(Coordinates(31.2, 121.5), Coordinates(-31.2, -58.5))
    assert d == pytest.approx(math.pi * EARTH_RADIUS_M, abs=1.0)  # haversine is weakest here


def test_distance_crosses_the_date_line_the_short_way() -> None:
    d = distance_m(Coordinates(0.0, 179.5), Coordinates(0.0, -179.5))
    assert d == pytest.approx(EARTH_RADIUS_M * math.radians(1.0), rel=1e-9)


coordinates = st.builds(
    Coordinates,
    st.floats(-89.9, 89.9, allow_nan=False),
    st.floats(-180, 180, allow_nan=False),
)


@given(a=coordinates, b=coordinates)
def test_distance_is_symmetric_zero_to_itself_and_at_most_half_the_circumference(
    a: Coordinates, b: Coordinates
) -> None:
    assert distance_m(a, a) == pytest.approx(0.0, abs=1e-6)
    assert distance_m(a, b) == pytest.approx(distance_m(b, a), abs=1e-6)
    assert 0.0 <= distance_m(a, b) <= math.pi * EARTH_RADIUS_M + 1e-6


@given(a=coordinates, b=coordinates, c=coordinates)
def test_distance_obeys_the_triangle_inequality(
    a: Coordinates, b: Coordinates, c: Coordinates
) -> None:
    assert distance_m(a, c) <= distance_m(a, b) + distance_m(b, c) + 1e-3


# -- ship_from ---------------------------------------------------------------------------------


def a_branch(name: str, lng: float | None, *, is_open: bool = True) -> Branch:
    return Branch(
        id=BranchId(f"b_{name}"),
        merchant=MERCHANT,
        name=name,
        lat=None if lng is None else 31.2,
        lng=lng,
        is_open=is_open,
    )


SELLING = a_branch("xuhui", 121.40)
NEAR_LNG: Final = 121.52
NEAR = a_branch("near", NEAR_LNG)
MIDDLE = a_branch("middle", 121.48)
HOME: Final = Coordinates(31.2, 121.53)
LINES: Final = ((TEA, 2), (CAKE, 1))


def stocked(*branches: Branch, tea: int = 5, cake: int = 5) -> dict[tuple[BranchId, SkuId], int]:
    return {k: v for b in branches for k, v in (((b.id, TEA), tea), ((b.id, CAKE), cake))}


def test_the_nearest_branch_holding_every_line_ships() -> None:
    available = stocked(SELLING, NEAR, MIDDLE)
    chosen = ship_from(SELLING, (SELLING, MIDDLE, NEAR), LINES, available, HOME)
    assert chosen == NEAR


def test_a_branch_short_of_one_line_is_skipped() -> None:
    available = {**stocked(SELLING, NEAR, MIDDLE), (NEAR.id, TEA): 1}
    assert ship_from(SELLING, (SELLING, NEAR, MIDDLE), LINES, available, HOME) == MIDDLE


def test_a_branch_holding_exactly_the_quantity_ships() -> None:
    available = stocked(SELLING, NEAR, tea=2, cake=1)
    assert ship_from(SELLING, (SELLING, NEAR), LINES, available, HOME) == NEAR


def test_a_closed_branch_is_skipped() -> None:
    available = stocked(SELLING, NEAR, MIDDLE)
    branches = (SELLING, replace(NEAR, is_open=False), MIDDLE)
    assert ship_from(SELLING, branches, LINES, available, HOME) == MIDDLE


def test_a_branch_without_coordinates_is_skipped() -> None:
    nowhere = a_branch("nowhere", None)
    available = stocked(SELLING, nowhere)
    assert ship_from(SELLING, (nowhere, SELLING), LINES, available, HOME) == SELLING


def test_no_branch_ships_when_none_is_open_and_stocked() -> None:
    available = {**stocked(SELLING, NEAR), (SELLING.id, CAKE): 0}
    branches = (SELLING, replace(NEAR, is_open=False))
    assert ship_from(SELLING, branches, LINES, available, HOME) is None
    assert ship_from(SELLING, (), LINES, available, HOME) is None


@pytest.mark.parametrize("selling_first", [True, False])
def test_a_tie_in_distance_goes_to_the_selling_branch(selling_first: bool) -> None:
    selling = replace(SELLING, lng=NEAR_LNG)
    twin = replace(NEAR, id=BranchId("b_twin"))
    others = (NEAR, twin)
    branches = (selling, *others) if selling_first else (*others, selling)
    available = stocked(selling, NEAR, twin)
    assert ship_from(selling, branches, LINES, available, HOME) == selling


def test_the_selling_branch_loses_to_a_branch_even_slightly_nearer() -> None:
    selling = replace(SELLING, lng=NEAR_LNG - 0.0001)  # about 10 m further from HOME
    available = stocked(selling, NEAR)
    assert ship_from(selling, (selling, NEAR), LINES, available, HOME) == NEAR


def test_holds_all_counts_a_missing_stock_row_as_none() -> None:
    assert holds_all(NEAR.id, LINES, stocked(NEAR))
    assert not holds_all(NEAR.id, LINES, {(NEAR.id, TEA): 5})
    assert holds_all(NEAR.id, (), {})
