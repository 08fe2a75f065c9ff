"""The in-process bus: numbering per show, the resume backlog, and listeners."""

from __future__ import annotations

import pytest

from commerce.ids import MerchantId, ShowId
from streamserver.bus.local import LocalBus
from streamserver.bus.port import BACKLOG_MAX, Event, Published

A, B = ShowId("show_a"), ShowId("show_b")
M, N = MerchantId("m_1"), MerchantId("m_2")


def ev(i: int) -> Event:
    return {"type": "card.updated", "i": i}


async def published(bus: LocalBus, show: ShowId, n: int) -> list[int]:
    return [await bus.publish(show, ev(i)) for i in range(n)]


async def test_publish_numbers_each_shows_events_consecutively_from_1() -> None:
    bus = LocalBus(start_seq=0)
    assert await bus.last_seq(A) == 0
    assert await published(bus, A, 3) == [1, 2, 3]
    assert await published(bus, B, 2) == [1, 2]  # another show has its own counter
    assert await bus.publish(A, ev(9)) == 4
    assert (await bus.last_seq(A), await bus.last_seq(B)) == (4, 2)


async def test_since_returns_exactly_the_events_after_a_seq() -> None:
    bus = LocalBus(start_seq=0)
    await published(bus, A, 5)
    await published(bus, B, 7)
    missed = await bus.since(A, 2)
    assert missed == [Published(3, ev(2)), Published(4, ev(3)), Published(5, ev(4))]
    assert await bus.since(A, 0) == [Published(i + 1, ev(i)) for i in range(5)]
    assert await bus.since(A, 4) == [Published(5, ev(4))]


async def test_since_is_empty_when_up_to_date() -> None:
    bus = LocalBus(start_seq=0)
    assert await bus.since(A, 0) == []  # a show nothing was published to yet
    await published(bus, A, 3)
    assert await bus.since(A, 3) == []


async def test_since_is_none_beyond_the_last_seq() -> None:
    """A number this bus never gave (a client of a restarted node): start over."""
    bus = LocalBus(start_seq=0)
    assert await bus.since(A, 1) is None
    await published(bus, A, 3)
    assert await bus.since(A, 4) is None
    assert await bus.since(A, 10**9) is None
    await published(bus, B, 10)
    assert await bus.since(A, 5) is None  # B's numbers do not count for A


async def test_since_is_none_when_older_than_the_backlog() -> None:
    bus = LocalBus(backlog_max=4, start_seq=0)
    await published(bus, A, 10)  # the backlog keeps 7..10
    assert [p.seq for p in await bus.since(A, 6) or []] == [7, 8, 9, 10]
    assert await bus.since(A, 5) is None  # 6 is gone: a snapshot, never a gap
    assert await bus.since(A, 0) is None
    assert await bus.since(A, 9) == [Published(10, ev(9))]


async def test_the_default_backlog_holds_backlog_max_events() -> None:
    bus = LocalBus(start_seq=0)
    total = BACKLOG_MAX + 6
    await published(bus, A, total)
    oldest_kept = total - BACKLOG_MAX + 1
    missed = await bus.since(A, oldest_kept - 1)
    assert missed is not None
    assert [p.seq for p in missed] == list(range(oldest_kept, total + 1))
    assert await bus.since(A, oldest_kept - 2) is None


async def test_subscribe_delivers_from_a_position_then_live_once_and_in_order() -> None:
    bus = LocalBus(start_seq=0)
    await published(bus, A, 5)
    heard: list[int] = []
    bus.subscribe(A, lambda p: heard.append(p.seq), after_seq=3)
    assert heard == [4, 5]  # what came after the position, before subscribe returns
    await published(bus, A, 2)
    assert heard == [4, 5, 6, 7]
    current: list[int] = []
    bus.subscribe(A, lambda p: current.append(p.seq), after_seq=await bus.last_seq(A))
    assert current == []
    await bus.publish(A, ev(0))
    assert current == [8]
    assert heard == [4, 5, 6, 7, 8]


async def test_listeners_hear_their_show_only_with_its_numbers() -> None:
    bus = LocalBus(start_seq=0)
    heard_a: list[Published] = []
    heard_a2: list[Published] = []
    heard_b: list[Published] = []
    bus.subscribe(A, heard_a.append, after_seq=0)
    bus.subscribe(A, heard_a2.append, after_seq=0)
    bus.subscribe(B, heard_b.append, after_seq=0)
    await bus.publish(A, ev(1))
    await bus.publish(B, ev(2))
    await bus.publish(A, ev(3))
    assert heard_a == heard_a2 == [Published(1, ev(1)), Published(2, ev(3))]
    assert heard_b == [Published(1, ev(2))]


async def test_a_listener_has_the_event_before_publish_returns() -> None:
    """The hub relies on it: once publish is done, every room has been written to."""
    bus = LocalBus(start_seq=0)
    heard: list[int] = []
    bus.subscribe(A, lambda p: heard.append(p.seq), after_seq=0)
    seq = await bus.publish(A, ev(0))
    assert heard == [seq]


async def test_unsubscribe_stops_one_listener_only() -> None:
    bus = LocalBus(start_seq=0)
    kept: list[Published] = []
    dropped: list[Published] = []
    bus.subscribe(A, kept.append, after_seq=0)
    unsubscribe = bus.subscribe(A, dropped.append, after_seq=0)
    await bus.publish(A, ev(1))
    unsubscribe()
    unsubscribe()  # twice is harmless
    await bus.publish(A, ev(2))
    assert [p.seq for p in kept] == [1, 2]
    assert [p.seq for p in dropped] == [1]


async def test_a_listener_may_unsubscribe_itself_while_being_called() -> None:
    bus = LocalBus(start_seq=0)
    heard: list[int] = []
    others: list[int] = []

    def once(p: Published) -> None:
        heard.append(p.seq)
        unsubscribe()

    unsubscribe = bus.subscribe(A, once, after_seq=0)
    bus.subscribe(A, lambda p: others.append(p.seq), after_seq=0)
    await published(bus, A, 3)
    assert heard == [1]
    assert others == [1, 2, 3]


async def test_events_are_kept_for_resuming_without_any_listener() -> None:
    bus = LocalBus(start_seq=0)
    await published(bus, A, 2)
    assert [p.seq for p in await bus.since(A, 0) or []] == [1, 2]


async def test_personal_events_go_to_their_merchants_listeners_unnumbered() -> None:
    bus = LocalBus(start_seq=0)
    heard_m: list[Event] = []
    heard_n: list[Event] = []
    unsubscribe = bus.subscribe_personal(M, heard_m.append)
    bus.subscribe_personal(N, heard_n.append)
    order = {"shopper": "s_1", "order": "o_1", "state": "placed"}
    await bus.publish_personal(M, order)
    assert heard_m == [order]
    assert heard_n == []
    assert await bus.last_seq(ShowId(M)) == 0  # personal events take no show numbers
    unsubscribe()
    await bus.publish_personal(M, {"shopper": "s_1", "order": "o_1", "state": "ready"})
    assert heard_m == [order]
    await bus.publish_personal(MerchantId("m_nobody"), order)  # no listener: nothing happens


async def test_close_drops_listeners() -> None:
    bus = LocalBus(start_seq=0)
    heard: list[object] = []
    bus.subscribe(A, heard.append, after_seq=0)
    bus.subscribe_personal(M, heard.append)
    await bus.start()
    await bus.close()
    await bus.publish(A, ev(1))
    await bus.publish_personal(M, {"shopper": "s"})
    assert heard == []


@pytest.mark.parametrize("backlog_max", [1, 2, 3])
async def test_tiny_backlogs_still_never_leave_a_gap(backlog_max: int) -> None:
    bus = LocalBus(backlog_max=backlog_max, start_seq=0)
    await published(bus, A, 6)
    for after in range(7):
        missed = await bus.since(A, after)
        if missed is None:
            assert after < 6 - backlog_max
        else:
            assert [p.seq for p in missed] == list(range(after + 1, 7))


async def test_a_restarted_bus_never_hands_out_an_earlier_runs_numbers() -> None:
    before = LocalBus()
    last = await before.publish(A, ev(1))
    after = LocalBus()  # a server restart: the in-process bus starts over
    assert await after.last_seq(A) > last
    assert await after.since(A, last) is None  # the old client gets a fresh snapshot
