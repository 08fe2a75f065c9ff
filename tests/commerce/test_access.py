"""Who may read or act on what (DESIGN.md "Roles and access"), for every role.

A franchisee sees orders its branch sold or fulfils and acts only on those it fulfils;
a shopper sees their own orders and may cancel one nobody has started on; a host does
nothing with orders; nobody reaches into another merchant.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

import pytest

from commerce.access import Actor, Role, may_act, may_read_branch, may_read_order
from commerce.catalog import CashbackFunder
from commerce.ids import Amount, BranchId, MerchantId, OrderId, RateBp, ShopperId, SkuId
from commerce.orders import Action, FulfillmentKind, Line, Order, OrderState

MERCHANT: Final = MerchantId("m_brand")
RIVAL: Final = MerchantId("m_rival")
SELLING: Final = BranchId("b_xuhui")  # the room the order was placed in
FULFILLING: Final = BranchId("b_pudong")  # ships it
OTHER: Final = BranchId("b_jingan")
SHOPPER: Final = ShopperId("u_ling")
SOMEONE_ELSE: Final = ShopperId("u_mei")

HQ = Actor(role=Role.HQ_OPERATOR, merchant=MERCHANT)
RIVAL_HQ = Actor(role=Role.HQ_OPERATOR, merchant=RIVAL)
HOST = Actor(role=Role.HOST, merchant=MERCHANT)
SELLER = Actor(role=Role.FRANCHISEE, merchant=MERCHANT, branch=SELLING)
SHIPPER = Actor(role=Role.FRANCHISEE, merchant=MERCHANT, branch=FULFILLING)
BYSTANDER = Actor(role=Role.FRANCHISEE, merchant=MERCHANT, branch=OTHER)
RIVAL_SHIPPER = Actor(role=Role.FRANCHISEE, merchant=RIVAL, branch=FULFILLING)
UNASSIGNED = Actor(role=Role.FRANCHISEE, merchant=MERCHANT)  # no branch: sees nothing
BUYER = Actor(role=Role.SHOPPER, merchant=MERCHANT, shopper=SHOPPER)
OTHER_SHOPPER = Actor(role=Role.SHOPPER, merchant=MERCHANT, shopper=SOMEONE_ELSE)
BUYER_AT_RIVAL = Actor(role=Role.SHOPPER, merchant=RIVAL, shopper=SHOPPER)
ANONYMOUS = Actor(role=Role.SHOPPER, merchant=MERCHANT)

ACTORS: Final = {
    "hq": HQ,
    "rival hq": RIVAL_HQ,
    "host": HOST,
    "selling franchisee": SELLER,
    "fulfilling franchisee": SHIPPER,
    "other branch's franchisee": BYSTANDER,
    "rival franchisee with the same branch id": RIVAL_SHIPPER,
    "franchisee without a branch": UNASSIGNED,
    "buyer": BUYER,
    "another shopper": OTHER_SHOPPER,
    "buyer's id at a rival": BUYER_AT_RIVAL,
    "shopper without an id": ANONYMOUS,
}


def a_delivery(state: OrderState = OrderState.PLACED) -> Order:
    """Sold in SELLING's room, shipped by FULFILLING."""
    return Order(
        id=OrderId("o_first"),
        merchant=MERCHANT,
        branch=SELLING,
        shopper=SHOPPER,
        lines=(Line(SkuId("k_tea"), 1, Amount(1999)),),
        fulfillment=FulfillmentKind.DELIVERY,
        ship_from=FULFILLING,
        total=Amount(1999),
        stored_value_part=Amount(0),
        commission_rate_bp=RateBp(1000),
        cashback_rate_bp=RateBp(0),
        cashback_funder=CashbackFunder.HQ,
        state=state,
        placed_at_ms=0,
        updated_at_ms=0,
    )


# -- branches -----------------------------------------------------------------------------

READS_BRANCH: Final = {
    "hq": {SELLING, FULFILLING, OTHER},
    "selling franchisee": {SELLING},
    "fulfilling franchisee": {FULFILLING},
    "other branch's franchisee": {OTHER},
}


@pytest.mark.parametrize("who", ACTORS)
@pytest.mark.parametrize("branch", [SELLING, FULFILLING, OTHER])
def test_only_hq_and_the_branchs_own_franchisee_read_a_branch(who: str, branch: BranchId) -> None:
    expected = branch in READS_BRANCH.get(who, set())
    assert may_read_branch(ACTORS[who], MERCHANT, branch) is expected


@pytest.mark.parametrize("who", ACTORS)
def test_nobody_reads_another_merchants_branch(who: str) -> None:
    actor = ACTORS[who]
    assert may_read_branch(actor, RIVAL, actor.branch or FULFILLING) is (
        who in ("rival hq", "rival franchisee with the same branch id")
    )


# -- orders -------------------------------------------------------------------------------

READS_ORDER: Final = {"hq", "selling franchisee", "fulfilling franchisee", "buyer"}


@pytest.mark.parametrize("who", ACTORS)
def test_an_order_is_read_by_hq_both_its_branches_and_its_buyer(who: str) -> None:
    assert may_read_order(ACTORS[who], a_delivery()) is (who in READS_ORDER)


def test_a_pickup_order_is_read_by_its_one_branch() -> None:
    pickup = replace(a_delivery(), fulfillment=FulfillmentKind.PICKUP, ship_from=SELLING)
    assert may_read_order(SELLER, pickup)
    assert not may_read_order(SHIPPER, pickup)
    assert may_act(SELLER, pickup, Action.PICK_UP)
    assert not may_act(SHIPPER, pickup, Action.PICK_UP)


def expected_to_act(who: str, action: Action, state: OrderState) -> bool:
    if who == "hq":
        return True
    if who == "fulfilling franchisee":
        return action is not Action.EXPIRE  # expiry is the sweeper's, run as HQ
    if who == "buyer":
        return action is Action.CANCEL and state is OrderState.PLACED
    return False


@pytest.mark.parametrize("who", ACTORS)
@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("state", list(OrderState))
def test_only_hq_the_fulfilling_branch_and_a_cancelling_buyer_act_on_an_order(
    who: str, action: Action, state: OrderState
) -> None:
    assert may_act(ACTORS[who], a_delivery(state), action) is expected_to_act(who, action, state)


@pytest.mark.parametrize("action", list(Action))
def test_the_selling_franchisee_cannot_act_on_an_order_another_branch_fulfils(
    action: Action,
) -> None:
    assert not may_act(SELLER, a_delivery(), action)


@pytest.mark.parametrize("action", list(Action))
def test_a_host_does_nothing_with_orders(action: Action) -> None:
    assert not may_read_order(HOST, a_delivery())
    assert not may_act(HOST, a_delivery(), action)
