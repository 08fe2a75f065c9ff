"""Where an order is fulfilled: pickup at the selling branch, or delivery from the
nearest open branch that holds every line (ties go to the selling branch)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from commerce.catalog import Branch
from commerce.ids import BranchId, SkuId
from commerce.values import value

EARTH_RADIUS_M = 6_371_008.8


@value
class Coordinates:
    lat: float
    lng: float


def distance_m(a: Coordinates, b: Coordinates) -> float:
    """Great-circle distance (haversine)."""
    phi1, phi2 = math.radians(a.lat), math.radians(b.lat)
    dphi = phi2 - phi1
    dlmb = math.radians(b.lng - a.lng)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def holds_all(
    branch: BranchId,
    lines: Sequence[tuple[SkuId, int]],
    available: Mapping[tuple[BranchId, SkuId], int],
) -> bool:
    return all(available.get((branch, sku), 0) >= qty for sku, qty in lines)


def ship_from(
    selling: Branch,
    branches: Sequence[Branch],
    lines: Sequence[tuple[SkuId, int]],
    available: Mapping[tuple[BranchId, SkuId], int],
    destination: Coordinates,
) -> Branch | None:
    """The nearest open branch holding all lines; None if no branch can ship."""
    best: tuple[float, int, Branch] | None = None
    for branch in branches:
        if not branch.is_open or not holds_all(branch.id, lines, available):
            continue
        if branch.lat is None or branch.lng is None:
            continue  # a branch without coordinates cannot be placed on the map
        d = distance_m(Coordinates(branch.lat, branch.lng), destination)
        key = (d, 0 if branch.id == selling.id else 1, branch)
        if best is None or key[:2] < best[:2]:
            best = key
    return None if best is None else best[2]
