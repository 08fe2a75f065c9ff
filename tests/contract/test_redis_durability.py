"""Redis only: the store reads Redis's persistence settings and says what a crash loses."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from streamserver.store.redis import RedisStore


@pytest.fixture
async def admin(redis_url: str, owns_redis: bool) -> AsyncIterator[redis.asyncio.Redis]:
    if not owns_redis:
        pytest.skip("reconfigures Redis: only the suite's own server")
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    before = await client.config_get("appendonly")
    before.update(await client.config_get("appendfsync"))
    yield client
    for name, value in before.items():
        await client.config_set(name, value)
    await client.aclose()


@pytest.mark.parametrize(
    ("appendonly", "appendfsync", "safe", "says"),
    [
        ("yes", "always", True, "appendfsync always"),
        ("yes", "everysec", False, "about the last second"),
        ("no", "everysec", False, "without AOF or snapshots"),
    ],
)
async def test_only_an_fsync_per_write_makes_redis_safe(
    admin: redis.asyncio.Redis,
    redis_url: str,
    appendonly: str,
    appendfsync: str,
    safe: bool,
    says: str,
) -> None:
    await admin.config_set("appendfsync", appendfsync)
    await admin.config_set("appendonly", appendonly)
    store = RedisStore(redis_url)
    await store.open()
    try:
        durability = await store.durability()
    finally:
        await store.close()
    assert durability.safe is safe
    assert says in durability.detail
