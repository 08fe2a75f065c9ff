"""Who may read or act on what: pure predicates over an actor and the thing touched.

Roles (DESIGN.md "Roles and access"): an HQ operator runs a merchant; a host streams a
show; a franchisee runs exactly one branch; a shopper buys and sees only their own
orders. A franchisee reads orders its branch sold or fulfils, its own customers and
its own statement, nothing of any other branch.
"""

from __future__ import annotations

from enum import StrEnum

from commerce.ids import BranchId, MerchantId, ShopperId
from commerce.orders import Action, Order, OrderState
from commerce.values import value


class Role(StrEnum):
    HQ_OPERATOR = "hq_operator"
    HOST = "host"
    FRANCHISEE = "franchisee"
    SHOPPER = "shopper"


@value(kw_only=True)
class Actor:
    role: Role
    merchant: MerchantId
    branch: BranchId | None = None  # a franchisee's branch
    shopper: ShopperId | None = None  # a shopper's own id


FULFILLING_ACTIONS = frozenset(
    {
        Action.MARK_READY,
        Action.SHIP,
        Action.PICK_UP,
        Action.DELIVER,
        Action.COLLECT,
        Action.CANCEL,
        Action.REFUND,
    }
)


def may_read_branch(actor: Actor, merchant: MerchantId, branch: BranchId) -> bool:
    if actor.merchant != merchant:
        return False
    if actor.role is Role.HQ_OPERATOR:
        return True
    return actor.role is Role.FRANCHISEE and actor.branch == branch


def may_read_order(actor: Actor, order: Order) -> bool:
    if actor.merchant != order.merchant:
        return False
    match actor.role:
        case Role.HQ_OPERATOR:
            return True
        case Role.FRANCHISEE:
            return actor.branch in (order.branch, order.ship_from)
        case Role.SHOPPER:
            return actor.shopper == order.shopper
        case Role.HOST:
            return False


def may_act(actor: Actor, order: Order, action: Action) -> bool:
    """Fulfilment is the fulfilling branch's (or HQ's); a shopper may only cancel an
    order of theirs that nobody has started to prepare."""
    if actor.merchant != order.merchant:
        return False
    match actor.role:
        case Role.HQ_OPERATOR:
            return (
                action in (Action.CANCEL, Action.REFUND, Action.EXPIRE)
                or action in FULFILLING_ACTIONS
            )
        case Role.FRANCHISEE:
            return actor.branch == order.ship_from and action in FULFILLING_ACTIONS
        case Role.SHOPPER:
            return (
                actor.shopper == order.shopper
                and action is Action.CANCEL
                and order.state is OrderState.PLACED
            )
        case Role.HOST:
            return False
