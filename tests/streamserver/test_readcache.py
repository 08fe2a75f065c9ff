"""The read cache in front of the store: one read per key however many ask at once, and
a record forgotten while it was being read is not kept."""

from __future__ import annotations

import asyncio
from typing import Any

from commerce.ids import BranchId, MerchantId, ShowId
from commerce.shows import Show, ShowStatus
from streamserver.readcache import ReadCache, _Expiring
from streamserver.store.port import Store

SHOW = Show(
    id=ShowId("s_one"), merchant=MerchantId("m_one"), title="Launch", status=ShowStatus.LIVE
)


class GatedStore:
    """Only the reads the cache makes; each waits until the test opens the gate."""

    def __init__(self) -> None:
        self.reads = 0
        self.gate = asyncio.Event()
        self.began = asyncio.Event()
        self.answer: Show | None = SHOW

    async def show(self, show_id: ShowId) -> Show | None:
        self.reads += 1
        answer = self.answer  # what the store held when the read began
        self.began.set()
        await self.gate.wait()
        return answer

    async def branch(self, branch_id: BranchId) -> None:
        raise AssertionError("not read here")

    async def session(self, token_sha256: bytes) -> None:
        raise AssertionError("not read here")


def cache_over(store: GatedStore) -> ReadCache:
    fake: Any = store
    as_store: Store = fake
    return ReadCache(as_store, ttl_s=60)


async def test_concurrent_misses_share_one_read_and_hits_read_nothing() -> None:
    store = GatedStore()
    cache = cache_over(store)
    waiting = [asyncio.create_task(cache.show(SHOW.id)) for _ in range(50)]
    await store.began.wait()
    await asyncio.sleep(0)  # one loop turn: every task has reached the cache
    store.gate.set()
    assert await asyncio.gather(*waiting) == [SHOW] * 50
    assert await cache.show(SHOW.id) == SHOW
    assert store.reads == 1


async def test_a_caller_that_goes_away_cancels_no_one_elses_read() -> None:
    store = GatedStore()
    cache = cache_over(store)
    first = asyncio.create_task(cache.show(SHOW.id))
    second = asyncio.create_task(cache.show(SHOW.id))
    await store.began.wait()
    first.cancel()
    store.gate.set()
    assert await second == SHOW
    assert store.reads == 1


async def test_a_record_forgotten_while_it_is_read_is_not_kept() -> None:
    store = GatedStore()
    cache = cache_over(store)
    before_change = asyncio.create_task(cache.show(SHOW.id))
    await store.began.wait()
    cache.forget_show(SHOW.id)  # e.g. the show ended on this node meanwhile
    store.answer = None
    store.gate.set()
    assert await before_change == SHOW  # it asked first: it may see the old record
    assert await cache.show(SHOW.id) is None  # the next caller reads again
    assert store.reads == 2


def test_entries_expire_after_their_ttl() -> None:
    lasting: _Expiring[str, int] = _Expiring(size_max=10, ttl_s=60)
    lasting["a"] = 1
    assert lasting.get("a", None) == 1
    gone: _Expiring[str, int] = _Expiring(size_max=10, ttl_s=0)
    gone["a"] = 1
    assert gone.get("a", None) is None
    assert len(gone) == 0  # dropped when found expired


def test_the_map_stays_bounded_dropping_the_oldest_first() -> None:
    kept: _Expiring[int, int] = _Expiring(size_max=100, ttl_s=60)
    for i in range(150):
        kept[i] = i
    kept[50] = 50  # stored again: now the newest
    kept[150] = 150
    assert len(kept) == 100
    assert kept.get(49, None) is None
    assert kept.get(51, None) is None  # the oldest after 50 moved to the end
    assert [kept.get(i, None) for i in (50, 52, 149, 150)] == [50, 52, 149, 150]
    kept.discard(150)
    assert kept.get(150, None) is None
