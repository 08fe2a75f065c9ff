"""The purchase path's pipelined Redis connection (streamserver/store/redis_wire.py),
against a real redis-server: replies reach their own callers, errors are typed, a lost
connection fails what was in flight and the next call reconnects."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from streamserver.store.redis_wire import Script, Wire
from tests.relay_probe import eventually


@pytest.fixture
async def wire(redis_url: str) -> AsyncIterator[Wire]:
    wire = Wire(redis_url)
    yield wire
    await wire.close()


def unique(name: str) -> str:
    return f"test-wire:{name}:{uuid.uuid4().hex}"


async def test_concurrent_calls_each_get_their_own_reply(wire: Wire) -> None:
    replies = await asyncio.gather(*(wire.call("ECHO", f"n{i}") for i in range(500)))
    assert replies == [f"n{i}" for i in range(500)]


async def test_a_cancelled_caller_leaves_the_next_reply_to_the_next_caller(wire: Wire) -> None:
    assert await wire.call("PING") == "PONG"  # connected: a call writes as soon as it runs
    first = asyncio.ensure_future(wire.call("ECHO", "first"))
    await asyncio.sleep(0)  # one loop turn: the task writes its command and awaits
    first.cancel()
    assert await wire.call("ECHO", "second") == "second"
    assert first.cancelled()


async def test_an_error_reply_is_raised_to_its_caller_only(wire: Wire) -> None:
    key = unique("text")
    await wire.call("SET", key, "not a number")
    results = await asyncio.gather(
        wire.call("INCR", key), wire.call("ECHO", "fine"), return_exceptions=True
    )
    assert isinstance(results[0], ResponseError)
    assert "not an integer" in str(results[0])
    assert results[1] == "fine"
    await wire.call("DEL", key)


async def test_a_script_redis_does_not_have_is_loaded_and_run(wire: Wire) -> None:
    # A text never seen by this Redis: the first EVALSHA is answered NOSCRIPT.
    script = Script(f"-- {uuid.uuid4().hex}\nreturn {{KEYS[1], ARGV[1]}}")
    assert await wire.call("SCRIPT", "EXISTS", script.sha) == [0]
    assert await script.run(wire, ["k"], ["v"]) == ["k", "v"]
    assert await wire.call("SCRIPT", "EXISTS", script.sha) == [1]


async def test_a_lost_connection_fails_the_call_in_flight_and_the_next_reconnects(
    wire: Wire, redis_url: str
) -> None:
    first_id = await wire.call("CLIENT", "ID")
    blocked = asyncio.ensure_future(wire.call("BLPOP", unique("never"), 0))
    admin = aioredis.Redis.from_url(redis_url)

    async def blocking() -> bool:  # Redis has the BLPOP: nothing tells us but CLIENT LIST
        return any(
            int(c["id"]) == first_id and c["cmd"] == "blpop" for c in await admin.client_list()
        )

    try:
        await eventually(blocking)
        assert await admin.client_kill_filter(_id=first_id) == 1
    finally:
        await admin.aclose()
    with pytest.raises(RedisConnectionError):
        await blocked
    assert await wire.call("PING") == "PONG"
    assert await wire.call("CLIENT", "ID") != first_id


async def test_the_url_selects_the_database(redis_url: str) -> None:
    key = unique("db")
    wire = Wire(redis_url.rsplit("/", 1)[0] + "/3")
    try:
        await wire.call("SET", key, "here")
    finally:
        await wire.close()
    db3 = aioredis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/3", decode_responses=True)
    db0 = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert await db3.get(key) == "here"
        assert await db0.get(key) is None
    finally:
        await db3.delete(key)
        await db3.aclose()
        await db0.aclose()
