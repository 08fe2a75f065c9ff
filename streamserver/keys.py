"""Typed application keys: every shared resource of the app, declared in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from streamserver.bus.port import Bus
from streamserver.config import Config
from streamserver.readcache import ReadCache
from streamserver.realtime.hub import Hub
from streamserver.realtime.stockfeed import StockFeed
from streamserver.relay.sessions import Relay
from streamserver.store.port import Durability, Store
from streamserver.throttle import SigninThrottle

if TYPE_CHECKING:  # it reads the API's presenters, which need these keys
    from streamserver.realtime.consolefeed import ConsoleFeeds

CONFIG: web.AppKey[Config] = web.AppKey("config", Config)
STORE: web.AppKey[Store] = web.AppKey("store", Store)
RELAY: web.AppKey[Relay] = web.AppKey("relay", Relay)
DURABILITY: web.AppKey[Durability] = web.AppKey("durability", Durability)
BUS: web.AppKey[Bus] = web.AppKey("bus", Bus)
HUB: web.AppKey[Hub] = web.AppKey("hub", Hub)
STOCK_FEED: web.AppKey[StockFeed] = web.AppKey("stock_feed", StockFeed)
READS: web.AppKey[ReadCache] = web.AppKey("reads", ReadCache)
CONSOLES: web.AppKey[ConsoleFeeds] = web.AppKey("consoles")
SIGNIN_THROTTLE: web.AppKey[SigninThrottle] = web.AppKey("signin_throttle", SigninThrottle)
