"""The in-process bus of the embedded default: one node, so a counter and a deque."""

from __future__ import annotations

import time
from collections import defaultdict, deque

from commerce.ids import MerchantId, ShowId
from streamserver.bus.port import (
    BACKLOG_MAX,
    Event,
    MerchantListener,
    Published,
    ShowListener,
    Unsubscribe,
)


class LocalBus:
    def __init__(self, backlog_max: int = BACKLOG_MAX, start_seq: int | None = None) -> None:
        # Numbers start at the clock (µs), so a restarted server never hands out a
        # number an earlier run gave: a client from before resumes with a snapshot.
        base = time.time_ns() // 1000 if start_seq is None else start_seq
        self._seq: dict[ShowId, int] = defaultdict(lambda: base)
        self._backlog: dict[ShowId, deque[Published]] = defaultdict(
            lambda: deque(maxlen=backlog_max)
        )
        self._listeners: dict[ShowId, set[ShowListener]] = defaultdict(set)
        self._personal: dict[MerchantId, set[MerchantListener]] = defaultdict(set)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._listeners.clear()
        self._personal.clear()

    async def publish(self, show: ShowId, event: Event) -> int:
        self._seq[show] += 1
        published = Published(self._seq[show], event)
        self._backlog[show].append(published)
        for listener in list(self._listeners.get(show, ())):
            listener(published)
        return published.seq

    async def since(self, show: ShowId, after_seq: int) -> list[Published] | None:
        backlog = self._backlog.get(show)
        last = self._seq[show]
        if after_seq > last:
            return None  # a number this bus never gave: start over
        if after_seq == last:
            return []
        if backlog is None or not backlog or backlog[0].seq > after_seq + 1:
            return None
        return [p for p in backlog if p.seq > after_seq]

    async def last_seq(self, show: ShowId) -> int:
        return self._seq[show]

    def subscribe(self, show: ShowId, listener: ShowListener, after_seq: int) -> Unsubscribe:
        for published in self._backlog.get(show, ()):
            if published.seq > after_seq:
                listener(published)
        self._listeners[show].add(listener)
        return lambda: self._listeners[show].discard(listener)

    async def publish_personal(self, merchant: MerchantId, event: Event) -> None:
        for listener in list(self._personal.get(merchant, ())):
            listener(event)

    def subscribe_personal(self, merchant: MerchantId, listener: MerchantListener) -> Unsubscribe:
        self._personal[merchant].add(listener)
        return lambda: self._personal[merchant].discard(listener)
