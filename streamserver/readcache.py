"""Short-lived copies of the records every request reads: shows, branches, sessions.

A purchase names a show and a branch and carries a session; reading the three from the
store on each request is three thread hops for values that change a few times a day.
They are kept here for a second (`cachetools.TTLCache`, bounded): a show's new status,
a branch's new hours or a signed-out session are seen everywhere within that second
(and at once on this node, which forgets a session when it signs it out). Handlers that
change a record read it fresh.

Sessions are only ever created and deleted, and a node forgets one it deletes, so when
this node is the only one (the embedded store) they can be kept far longer: a shopper
buying once every few seconds would otherwise cost a store read on most purchases.
Expiry is checked on every use (auth.py), whatever the cache holds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, TypeVar, cast

from cachetools import TTLCache

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
        self._store = store
        self._shows: TTLCache[ShowId, Show | None] = TTLCache(SIZE_MAX, ttl_s)
        self._branches: TTLCache[BranchId, Branch | None] = TTLCache(SIZE_MAX, ttl_s)
        session_ttl_s = SINGLE_NODE_SESSION_TTL_S if single_node else ttl_s
        self._sessions: TTLCache[bytes, Session | None] = TTLCache(SIZE_MAX, session_ttl_s)

    async def show(self, show_id: ShowId) -> Show | None:
        return await _through(self._shows, show_id, self._store.show)

    async def branch(self, branch_id: BranchId) -> Branch | None:
        return await _through(self._branches, branch_id, self._store.branch)

    async def session(self, token_sha256: bytes) -> Session | None:
        return await _through(self._sessions, token_sha256, self._store.session)

    def forget_show(self, show_id: ShowId) -> None:
        self._shows.pop(show_id, None)

    def forget_branch(self, branch_id: BranchId) -> None:
        self._branches.pop(branch_id, None)

    def forget_session(self, token_sha256: bytes) -> None:
        self._sessions.pop(token_sha256, None)


_ABSENT: Final = object()


async def _through(
    cache: TTLCache[K, V | None], key: K, load: Callable[[K], Awaitable[V | None]]
) -> V | None:
    """One lookup on a hit (it is every purchase's path, three times)."""
    value = cache.get(key, _ABSENT)
    if value is _ABSENT:
        value = cache[key] = await load(key)
    return cast("V | None", value)
