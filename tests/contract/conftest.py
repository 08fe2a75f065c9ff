"""The contract suite's fixtures: every test runs once per Store adapter.

`store` is an open store of the adapter named by `adapter` ("sqlite" or "redis").
SQLite gets a fresh file per test. Redis is tests/conftest.py's `redis_url`: REDIS_URL
if set, else a throwaway `redis-server` on a free loopback port for the session,
without persistence; tests never flush it: each one works in a fresh merchant (keys
are namespaced by merchant), so REDIS_URL may point at a shared server.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from streamserver.store.port import Store
from streamserver.store.redis import RedisStore
from streamserver.store.sqlite import SqliteStore
from tests.contract.world import World

StoreFactory = Callable[[], Store]


@pytest.fixture
def owns_redis() -> bool:
    """Whether the suite started the Redis it uses (and may reconfigure it)."""
    return "REDIS_URL" not in os.environ


@pytest.fixture(params=["sqlite", "redis"])
def adapter(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(adapter: str, request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """A new, unopened store on the same data each call (to close and reopen)."""
    if adapter == "sqlite":
        path = tmp_path / "x.sqlite3"
        return lambda: SqliteStore(path)
    url = request.getfixturevalue("redis_url")
    return lambda: RedisStore(url)


@pytest.fixture
async def store(make_store: StoreFactory) -> AsyncIterator[Store]:
    opened = make_store()
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def world(store: Store) -> World:
    return await World.create(store)
