"""The bus over Redis: show events numbered and kept in Redis, fanned out by pub/sub.

Publishing is one script: INCR the show's counter, XADD the event to the show's capped
stream (the backlog any node resumes clients from), PUBLISH it with its number. Both
keys carry the show as a hash tag (`{s:<show>}`), so a Redis Cluster keeps them in one
slot. Pub/sub is at-most-once (shared notes): every node remembers the last number it
delivered per show and, on a jump or after reconnecting, fills the gap from the stream
before delivering more, so listeners see each show's events once and in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import Any, Final

import msgpack
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from commerce.ids import MerchantId, ShowId
from streamserver.bus.port import (
    BACKLOG_MAX,
    Event,
    MerchantListener,
    Published,
    ShowListener,
    Unsubscribe,
)
from streamserver.store.redis_wire import Script, Wire

logger = logging.getLogger(__name__)

PUBLISH: Final = """
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 's', seq, 'e', ARGV[1])
redis.call('PUBLISH', ARGV[3], seq .. ':' .. ARGV[1])
return seq
"""
RECONNECT_DELAY_MAX_S: Final = 5.0


def _seq_key(show: ShowId) -> str:
    return f"{{s:{show}}}:seq"


def _stream_key(show: ShowId) -> str:
    return f"{{s:{show}}}:events"


def _show_channel(show: ShowId) -> str:
    return f"lianbo:show:{show}"


def _personal_channel(merchant: MerchantId) -> str:
    return f"lianbo:personal:{merchant}"


def _unpack(data: bytes | str) -> Event:
    event = msgpack.unpackb(data, raw=False)
    assert isinstance(event, dict)
    return event


class RedisBus:
    def __init__(self, url: str) -> None:
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=32, timeout=10)
        self._redis = aioredis.Redis(connection_pool=pool)
        self._wire = Wire(url)  # publishing: one pipelined connection (store/redis_wire.py)
        self._publish = Script(PUBLISH)
        self._listeners: dict[ShowId, set[ShowListener]] = defaultdict(set)
        self._personal: dict[MerchantId, set[MerchantListener]] = defaultdict(set)
        self._personal_out: dict[MerchantId, list[Event]] = {}
        self._flushing: set[asyncio.Task[None]] = set()
        self._delivered: dict[ShowId, int] = {}
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._changes: asyncio.Queue[None] = asyncio.Queue()

    async def start(self) -> None:
        await self._redis.ping()
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        for merchant in list(self._personal_out):
            self._flush_personal(merchant)
        await asyncio.gather(*self._flushing, return_exceptions=True)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._pubsub is not None:
            await self._pubsub.aclose()
        await self._wire.close()
        await self._redis.aclose()

    # -- publishing ---------------------------------------------------------------------

    async def publish(self, show: ShowId, event: Event) -> int:
        payload = msgpack.packb(event)
        seq = await self._publish.run(
            self._wire,
            [_seq_key(show), _stream_key(show)],
            [payload, BACKLOG_MAX, _show_channel(show)],
        )
        return int(seq)

    async def publish_personal(self, merchant: MerchantId, event: Event) -> None:
        """Queued for one PUBLISH of a list with the merchant's other personal events of
        this loop tick: during a flash sale, one call for dozens of orders. Not awaited:
        what an event announces is already stored, and a failed PUBLISH is logged."""
        events = self._personal_out.get(merchant)
        if events is None:
            events = self._personal_out[merchant] = []
            asyncio.get_running_loop().call_soon(self._flush_personal, merchant)
        events.append(event)

    def _flush_personal(self, merchant: MerchantId) -> None:
        events = self._personal_out.pop(merchant, None)
        if events is None:  # flushed by close()
            return
        task = asyncio.get_running_loop().create_task(self._publish_events(merchant, events))
        self._flushing.add(task)
        task.add_done_callback(self._published)

    def _published(self, task: asyncio.Task[None]) -> None:
        self._flushing.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.warning("personal events not published: %s", error)

    async def _publish_events(self, merchant: MerchantId, events: list[Event]) -> None:
        await self._wire.call("PUBLISH", _personal_channel(merchant), msgpack.packb(events))

    async def since(self, show: ShowId, after_seq: int) -> list[Published] | None:
        last = await self.last_seq(show)
        if after_seq > last:
            return None
        if after_seq == last:
            return []
        entries = await self._redis.xrange(_stream_key(show)) or []
        backlog = [
            Published(int(fields[b"s"]), _unpack(fields[b"e"]))
            for _, fields in entries
            if fields is not None
        ]
        if not backlog or backlog[0].seq > after_seq + 1:
            return None  # older than the backlog: start over from a snapshot
        return [p for p in backlog if p.seq > after_seq]

    async def last_seq(self, show: ShowId) -> int:
        value = await self._redis.get(_seq_key(show))
        return 0 if value is None else int(value)

    # -- subscribing --------------------------------------------------------------------

    def subscribe(self, show: ShowId, listener: ShowListener, after_seq: int) -> Unsubscribe:
        # Delivery resumes from the lowest position any listener of this show needs;
        # listeners drop numbers they already have.
        self._delivered[show] = min(self._delivered.get(show, after_seq), after_seq)
        self._listeners[show].add(listener)
        self._changes.put_nowait(None)

        def unsubscribe() -> None:
            self._listeners[show].discard(listener)
            self._changes.put_nowait(None)

        return unsubscribe

    def subscribe_personal(self, merchant: MerchantId, listener: MerchantListener) -> Unsubscribe:
        self._personal[merchant].add(listener)
        self._changes.put_nowait(None)

        def unsubscribe() -> None:
            self._personal[merchant].discard(listener)
            self._changes.put_nowait(None)

        return unsubscribe

    def _wanted(self) -> set[str]:
        shows = {_show_channel(s) for s, ls in self._listeners.items() if ls}
        return shows | {_personal_channel(m) for m, ls in self._personal.items() if ls}

    async def _read(self) -> None:
        """Deliver messages; resubscribe and fill gaps after any reconnect."""
        delay = 0.1
        while True:
            try:
                self._pubsub = self._redis.pubsub()
                subscribed: set[str] = set()
                while True:
                    wanted = self._wanted()
                    if wanted - subscribed:
                        await self._pubsub.subscribe(*(wanted - subscribed))
                        for channel in wanted - subscribed:  # published before SUBSCRIBE took
                            if channel.startswith("lianbo:show:"):
                                await self._catch_up(ShowId(channel[len("lianbo:show:") :]))
                    if subscribed - wanted:
                        await self._pubsub.unsubscribe(*(subscribed - wanted))
                    subscribed = wanted
                    if not subscribed:
                        await self._changes.get()
                        continue
                    message = await self._pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=0.2
                    )
                    if message is not None:
                        await self._dispatch(message["channel"].decode(), message["data"])
                    delay = 0.1
            except asyncio.CancelledError:
                raise
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                logger.warning("bus lost Redis (%s); reconnecting in %.1f s", exc, delay)
                with contextlib.suppress(Exception):
                    await self._pubsub.aclose()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_DELAY_MAX_S)

    async def _dispatch(self, channel: str, data: bytes) -> None:
        if channel.startswith("lianbo:personal:"):
            events = msgpack.unpackb(data, raw=False)
            assert isinstance(events, list)
            for event in events:
                for personal in list(self._personal.get(MerchantId(channel[16:]), ())):
                    personal(event)
            return
        show = ShowId(channel[len("lianbo:show:") :])
        head, _, body = data.partition(b":")
        seq = int(head)
        delivered = self._delivered.get(show, 0)
        if seq <= delivered:
            return
        if seq > delivered + 1:
            await self._catch_up(show)  # pub/sub dropped something: the stream has it
            if seq <= self._delivered.get(show, 0):
                return
        self._deliver(show, Published(seq, _unpack(body)))

    async def _catch_up(self, show: ShowId) -> None:
        delivered = self._delivered.get(show, 0)
        missed = await self.since(show, delivered)
        for published in missed or []:
            self._deliver(show, published)
        if missed is None:  # too far behind to replay: listeners resync from their state
            self._delivered[show] = await self.last_seq(show)

    def _deliver(self, show: ShowId, published: Published) -> None:
        self._delivered[show] = published.seq
        for listener in list(self._listeners.get(show, ())):
            listener(published)
