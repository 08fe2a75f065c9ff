"""Shows and their branch rooms, and the show's broadcast lifecycle as a table.

A show belongs to one merchant and has one branch room per branch of that
merchant (derived, never stored: a branch opened mid-season gets its room at once).
The lifecycle is h11-style: a transition table, and a pure function that returns the
next state or a refusal reason.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from commerce.catalog import Branch
from commerce.ids import MerchantId, ShowId
from commerce.values import value


class ShowStatus(StrEnum):
    SCHEDULED = "scheduled"  # created, the host has not gone live yet
    LIVE = "live"  # a publisher is sending
    PAUSED = "paused"  # the publisher dropped or stopped; it may come back
    ENDED = "ended"  # over for good


class ShowEvent(StrEnum):
    PUBLISHER_STARTED = "publisher_started"
    PUBLISHER_STOPPED = "publisher_stopped"
    ENDED_BY_HOST = "ended_by_host"


TRANSITIONS: Final[dict[ShowStatus, dict[ShowEvent, ShowStatus]]] = {
    ShowStatus.SCHEDULED: {
        ShowEvent.PUBLISHER_STARTED: ShowStatus.LIVE,
        ShowEvent.ENDED_BY_HOST: ShowStatus.ENDED,
    },
    ShowStatus.LIVE: {
        ShowEvent.PUBLISHER_STOPPED: ShowStatus.PAUSED,
        ShowEvent.ENDED_BY_HOST: ShowStatus.ENDED,
    },
    ShowStatus.PAUSED: {
        ShowEvent.PUBLISHER_STARTED: ShowStatus.LIVE,
        ShowEvent.ENDED_BY_HOST: ShowStatus.ENDED,
    },
    ShowStatus.ENDED: {},
}


@value(kw_only=True)
class Show:
    id: ShowId
    merchant: MerchantId
    title: str
    status: ShowStatus = ShowStatus.SCHEDULED


@value
class BranchRoom:
    """A show as seen from one branch: the unit a shopper visits and buys in."""

    show: Show
    branch: Branch


def next_status(status: ShowStatus, event: ShowEvent) -> ShowStatus | None:
    """The status after `event`, or None when the event is not allowed in `status`."""
    return TRANSITIONS[status].get(event)


def branch_room(show: Show, branch: Branch) -> BranchRoom | None:
    """The branch room of `branch` in `show`; None if the branch is another merchant's."""
    if branch.merchant != show.merchant:
        return None
    return BranchRoom(show, branch)
