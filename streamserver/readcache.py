"""Short-lived copies of the records every request reads: shows, branches, sessions.

A purchase names a show and a branch and carries a session; reading the three from the
store on each request is three thread hops for values that change a few times a day.
They are kept here for a second (bounded): a show's new status, a branch's new hours or
a signed-out session are seen everywhere within that second (and at once on this node,
which forgets a session when it signs it out). Handlers that change a record read it
fresh.

Sessions are only ever created and deleted, and a node forgets one it deletes, so when
this node is the only one (the embedded store) they can be kept far longer: a shopper
buying once every few seconds would otherwise cost a store read on most purchases.
Expiry is checked on every use (auth.py), whatever the cache holds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Final, Generic, TypeVar, cast

from commerce.catalog import Branch
from commerce.ids import BranchId, ShowId
from commerce.shows import Show
from streamserver.store.port import Session, Store

K = TypeVar("K")
V = TypeVar("V")

TTL_S: Final = 1.0
SINGLE_NODE_SESSION_TTL_S: Final = 300.0
SIZE_MAX: Final = 10_000


class ReadCache:
    def __init__(self, store: Store, ttl_s: float = TTL_S, *, single_node: bool = False) -> None:
        self._shows = _Through(store.show, ttl_s)
        self._branches = _Through(store.branch, ttl_s)
        self._sessions = _Through(
            store.session, SINGLE_NODE_SESSION_TTL_S if single_node else ttl_s
        )

    async def show(self, show_id: ShowId) -> Show | None:
        return await self._shows.get(show_id)

    async def branch(self, branch_id: BranchId) -> Branch | None:
        return await self._branches.get(branch_id)

    async def session(self, token_sha256: bytes) -> Session | None:
        return await self._sessions.get(token_sha256)

    def forget_show(self, show_id: ShowId) -> None:
        self._shows.forget(show_id)

    def forget_branch(self, branch_id: BranchId) -> None:
        self._branches.forget(branch_id)

    def forget_session(self, token_sha256: bytes) -> None:
        self._sessions.forget(token_sha256)


_ABSENT: Final = object()


class _Through(Generic[K, V]):
    """A TTL cache in front of one store read. Concurrent misses of a key share one read:
    when a show's entry expires under a flash sale, hundreds of purchases miss together."""

    def __init__(self, load: Callable[[K], Awaitable[V | None]], ttl_s: float) -> None:
        self._load = load
        self._cache: _Expiring[K, V | None] = _Expiring(SIZE_MAX, ttl_s)
        self._loading: dict[K, asyncio.Task[V | None]] = {}

    async def get(self, key: K) -> V | None:
        value = self._cache.get(key, _ABSENT)  # one lookup on a hit: every purchase's path
        if value is not _ABSENT:
            return cast("V | None", value)
        loading = self._loading.get(key)
        if loading is None:  # a task, so a caller that goes away cancels no one else's read
            loading = self._loading[key] = asyncio.ensure_future(self._fill(key))
        return await asyncio.shield(loading)

    async def _fill(self, key: K) -> V | None:
        this = asyncio.current_task()
        try:
            value = await self._load(key)
            if self._loading.get(key) is this:  # not forgotten while it was read
                self._cache[key] = value
            return value
        finally:
            if self._loading.get(key) is this:
                del self._loading[key]

    def forget(self, key: K) -> None:
        self._cache.discard(key)
        self._loading.pop(key, None)  # a read in flight may predate the change: not kept


class _Expiring(Generic[K, V]):
    """A bounded map whose entries vanish `ttl_s` after they were stored.

    cachetools.TTLCache did this at about 950 ns a lookup, and a purchase makes four:
    about 5 us of its event-loop CPU. All entries live equally long, so the dict's
    insertion order is their expiry order (a key stored again moves to the end), and
    the oldest are always at its front.
    """

    def __init__(self, size_max: int, ttl_s: float) -> None:
        self._entries: dict[K, tuple[float, V]] = {}
        self._size_max = size_max
        self._ttl_s = ttl_s

    def get(self, key: K, default: object) -> V | object:
        entry = self._entries.get(key)
        if entry is None:
            return default
        if entry[0] <= time.monotonic():
            del self._entries[key]
            return default
        return entry[1]

    def __setitem__(self, key: K, value: V) -> None:
        entries = self._entries
        entries.pop(key, None)
        now = time.monotonic()
        while entries:
            oldest = next(iter(entries))
            if entries[oldest][0] > now and len(entries) < self._size_max:
                break
            del entries[oldest]
        entries[key] = (now + self._ttl_s, value)

    def discard(self, key: K) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)
