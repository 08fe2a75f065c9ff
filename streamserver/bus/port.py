"""The Bus port: publish a show's events to every node, numbered, and replay recent ones.

A show's events get consecutive sequence numbers from the bus (in-process: a counter;
Redis: one counter and one capped stream per show), so a client that reconnects, to
any node, says where it left off and gets what it missed, or a fresh snapshot when
that is older than the backlog. Events carry absolute values (stock left, not "-1"):
a lost one heals with the next. Personal events (a shopper's own order changing) go
on a per-merchant channel without numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol

from commerce.ids import MerchantId, ShowId
from commerce.values import value

BACKLOG_MAX: Final = 1024  # events kept per show for resuming clients

Event = dict[str, Any]


@value
class Published:
    seq: int
    event: Event


ShowListener = Callable[[Published], None]
MerchantListener = Callable[[Event], None]
Unsubscribe = Callable[[], None]


class Bus(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def publish(self, show: ShowId, event: Event) -> int: ...
    async def since(self, show: ShowId, after_seq: int) -> list[Published] | None: ...
    async def last_seq(self, show: ShowId) -> int: ...
    def subscribe(self, show: ShowId, listener: ShowListener, after_seq: int) -> Unsubscribe:
        """Deliver every event of `show` numbered above `after_seq`, in order, once."""
        ...

    async def publish_personal(self, merchant: MerchantId, event: Event) -> None: ...
    def subscribe_personal(
        self, merchant: MerchantId, listener: MerchantListener
    ) -> Unsubscribe: ...
