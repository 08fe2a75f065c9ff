"""The show lifecycle table and branch rooms, as plain values."""

from __future__ import annotations

import pytest

from commerce.catalog import Branch
from commerce.ids import BranchId, MerchantId, ShowId, is_valid_id
from commerce.shows import Show, ShowEvent, ShowStatus, branch_room, next_status

LIVE_CYCLE = [
    (ShowStatus.SCHEDULED, ShowEvent.PUBLISHER_STARTED, ShowStatus.LIVE),
    (ShowStatus.LIVE, ShowEvent.PUBLISHER_STOPPED, ShowStatus.PAUSED),
    (ShowStatus.PAUSED, ShowEvent.PUBLISHER_STARTED, ShowStatus.LIVE),
    (ShowStatus.LIVE, ShowEvent.ENDED_BY_HOST, ShowStatus.ENDED),
]


@pytest.mark.parametrize(("status", "event", "after"), LIVE_CYCLE)
def test_a_show_goes_live_pauses_resumes_and_ends(
    status: ShowStatus, event: ShowEvent, after: ShowStatus
) -> None:
    assert next_status(status, event) is after


@pytest.mark.parametrize("event", list(ShowEvent))
def test_nothing_happens_to_an_ended_show(event: ShowEvent) -> None:
    assert next_status(ShowStatus.ENDED, event) is None


def test_a_publisher_cannot_stop_before_it_started() -> None:
    assert next_status(ShowStatus.SCHEDULED, ShowEvent.PUBLISHER_STOPPED) is None
    assert next_status(ShowStatus.PAUSED, ShowEvent.PUBLISHER_STOPPED) is None


def test_a_branch_room_exists_only_for_the_shows_own_merchant() -> None:
    show = Show(id=ShowId("s_aaaaaaaaaaaaaaaa"), merchant=MerchantId("m_one"), title="Launch")
    own = Branch(id=BranchId("b_own"), merchant=MerchantId("m_one"), name="Xuhui")
    other = Branch(id=BranchId("b_other"), merchant=MerchantId("m_two"), name="Elsewhere")
    room = branch_room(show, own)
    assert room is not None
    assert room.branch is own
    assert branch_room(show, other) is None


@pytest.mark.parametrize(
    ("kind", "value", "valid"),
    [
        ("show", "s_abcdefghij234567", True),
        ("show", "b_abcdefghij234567", False),
        ("branch", "b_ABCDEFGHIJ", False),
        ("merchant", "m_abc", False),
        ("merchant", "m_abcdefghij/..", False),
    ],
)
def test_ids_carry_their_kind_and_nothing_else(kind: str, value: str, valid: bool) -> None:
    assert is_valid_id(kind, value) is valid
