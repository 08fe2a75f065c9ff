"""The aiohttp application: one cleanup context per resource, in dependency order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from commerce.ids import ShowId
from commerce.orders import Order
from commerce.shows import ShowEvent, next_status
from streamserver.bus.local import LocalBus
from streamserver.bus.port import Bus
from streamserver.bus.redis import RedisBus
from streamserver.config import Config
from streamserver.effects import after_apply
from streamserver.keys import (
    BUS,
    CONFIG,
    CONSOLES,
    DURABILITY,
    HUB,
    READS,
    RELAY,
    SIGNIN_THROTTLE,
    STOCK_FEED,
    STORE,
)
from streamserver.middleware import MIDDLEWARES, no_stale_assets
from streamserver.readcache import ReadCache
from streamserver.realtime.consolefeed import ConsoleFeeds
from streamserver.realtime.hub import Hub
from streamserver.realtime.stockfeed import StockFeed
from streamserver.relay import tap
from streamserver.relay.sessions import Relay, RelaySettings
from streamserver.routes import add_routes
from streamserver.store.port import Applied, Store
from streamserver.store.redis import RedisStore
from streamserver.store.sqlite import SqliteStore
from streamserver.sweeper import run_sweeper
from streamserver.throttle import SigninThrottle

logger = logging.getLogger(__name__)


def make_app(config: Config) -> web.Application:
    app = web.Application(middlewares=MIDDLEWARES, client_max_size=1024**2)
    app[CONFIG] = config
    app[SIGNIN_THROTTLE] = SigninThrottle.default()
    add_routes(app)
    app.on_response_prepare.append(no_stale_assets)
    app.cleanup_ctx.append(_store)
    app.cleanup_ctx.append(_realtime)
    app.cleanup_ctx.append(_sweeper)
    app.cleanup_ctx.append(_relay)
    app.cleanup_ctx.append(_consoles)
    return app


def open_store(config: Config) -> Store:
    if config.redis_url:
        return RedisStore(config.redis_url)
    return SqliteStore(config.data_dir / "lianbo.sqlite3", synchronous=config.sqlite_synchronous)


async def _store(app: web.Application) -> AsyncIterator[None]:
    store = open_store(app[CONFIG])
    await store.open()
    durability = await store.durability()
    app[DURABILITY] = durability
    log = logger.info if durability.safe else logger.warning
    log("store: %s", durability.detail)
    # A show cannot be live across a restart: its publisher's peer died with the process.
    paused = await store.pause_live_shows()
    if paused:
        logger.info("paused %d show(s) that were live when the server stopped", paused)
    app[STORE] = store
    app[READS] = ReadCache(store, single_node=isinstance(store, SqliteStore))
    yield
    await store.close()


def open_bus(config: Config) -> Bus:
    if config.redis_url:
        return RedisBus(config.redis_url)
    return LocalBus()


async def _realtime(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    bus = open_bus(config)
    await bus.start()
    app[BUS] = bus
    feed = StockFeed(app[STORE], bus)
    feed.start()
    app[STOCK_FEED] = feed
    hub = Hub(app[STORE], bus, config.allowed_origins)
    hub.start()
    app[HUB] = hub

    async def close_sockets(app: web.Application) -> None:
        await hub.close_sockets()

    app.on_shutdown.append(close_sockets)
    yield
    await hub.close()
    await feed.close()
    await bus.close()


async def _sweeper(app: web.Application) -> AsyncIterator[None]:
    async def on_applied(order: Order, applied: Applied) -> None:
        await after_apply(app, order, applied)

    task = asyncio.create_task(
        run_sweeper(app[STORE], app[CONFIG].expiry_sweep_interval_s, on_applied)
    )
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _relay(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    tap.check_internals()
    if config.ice_hosts:
        tap.restrict_host_addresses(config.ice_hosts)
    store = app[STORE]

    async def record_show_event(show_id: ShowId, event: ShowEvent) -> None:
        show = await store.show(show_id)
        status = None if show is None else next_status(show.status, event)
        if status is not None:
            await store.set_show_status(show_id, status)
            app[READS].forget_show(show_id)
            await app[BUS].publish(show_id, {"type": "show.status", "status": status})

    relay = Relay(
        RelaySettings(
            ice_servers=config.rtc_ice_servers(),
            loopback_only=config.loopback_only,
            pli_interval_s=config.pli_interval_s,
            send_buffer_bytes_max=config.send_buffer_bytes_max,
            connect_timeout_s=config.connect_timeout_s,
        ),
        record_show_event,
    )
    relay.start()
    app[RELAY] = relay
    yield
    await relay.close()


async def _consoles(app: web.Application) -> AsyncIterator[None]:
    hub = app[HUB]
    feeds = ConsoleFeeds(app[STORE], app[BUS], hub.viewers)
    feeds.start()
    app[CONSOLES] = feeds

    async def close_sockets(app: web.Application) -> None:
        await feeds.close_sockets()

    app.on_shutdown.append(close_sockets)
    yield
    await feeds.close()
