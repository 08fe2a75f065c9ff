"""One pipelined Redis connection for the calls a flash sale makes every loop tick.

A purchase on Redis costs two script calls per loop tick (the views, then the plans) and
one PUBLISH. redis-py spends about 95 us of CPU per awaited command in its pool, retry
and connection layers; at the few purchases a tick brings when shoppers arrive spread
out, that was a fifth of a purchase. Here a call is one write on a socket that stays
open, and replies go to callers in the order the calls were written (Redis answers in
order), parsed by hiredis: about 41 us per call, measured the same way.

Everything else (reads, consoles, set-up) keeps using redis-py.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
from typing import Any

import hiredis
from redis.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError


class _Replies(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reader = hiredis.Reader(encoding="utf-8")
        self.waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            waiter = self.waiting.popleft()
            if waiter.done():  # its caller was cancelled; the reply is still read in turn
                continue
            if isinstance(reply, hiredis.ReplyError):
                waiter.set_exception(_error(str(reply)))
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = RedisConnectionError(f"Redis closed the connection ({exc or 'EOF'})")
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_exception(self.lost)


def _error(message: str) -> ResponseError:
    return NoScriptError(message) if message.startswith("NOSCRIPT") else ResponseError(message)


class Wire:
    """Connects on first use and again after a lost connection. A call whose connection
    is lost fails with redis-py's ConnectionError: its outcome is unknown."""

    def __init__(self, url: str) -> None:
        self._options = parse_url(url)  # type: ignore[no-untyped-call]
        self._tls = url.startswith("rediss://")
        self._replies: _Replies | None = None
        self._connecting = asyncio.Lock()

    async def call(self, *args: str | bytes | int | float) -> Any:
        replies = self._replies
        if replies is None or replies.lost is not None:
            replies = await self._connect()
        return await self._send(replies, args)

    async def close(self) -> None:
        if self._replies is not None and self._replies.transport is not None:
            self._replies.transport.close()
        self._replies = None

    def _send(self, replies: _Replies, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        assert replies.transport is not None
        future = asyncio.get_running_loop().create_future()
        replies.transport.write(hiredis.pack_command(args))
        replies.waiting.append(future)
        return future

    async def _connect(self) -> _Replies:
        async with self._connecting:
            if self._replies is not None and self._replies.lost is None:
                return self._replies
            options = self._options
            loop = asyncio.get_running_loop()
            if "path" in options:
                _, replies = await loop.create_unix_connection(_Replies, options["path"])
            else:
                host, port = options.get("host", "localhost"), options.get("port", 6379)
                _, replies = await loop.create_connection(
                    _Replies, host, port, ssl=True if self._tls else None
                )
            hello: list[asyncio.Future[Any]] = []
            if options.get("password"):
                user = (options["username"],) if options.get("username") else ()
                hello.append(self._send(replies, ("AUTH", *user, options["password"])))
            if options.get("db"):
                hello.append(self._send(replies, ("SELECT", options["db"])))
            for answer in hello:
                await answer
            self._replies = replies
            return replies


class Script:
    """A Lua script run by its SHA1, loaded again if Redis has lost it (a restart, or
    SCRIPT FLUSH): NOSCRIPT means nothing ran, so the retry is safe."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 (Redis's id for it)

    async def run(self, wire: Wire, keys: list[str], args: list[Any]) -> Any:
        try:
            return await wire.call("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await wire.call("SCRIPT", "LOAD", self.text)
            return await wire.call("EVALSHA", self.sha, len(keys), *keys, *args)
