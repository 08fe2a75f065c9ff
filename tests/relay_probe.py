"""What a test viewer receives, packet by packet, without decoding it.

A `PacketLog` taps a client viewer's receiver (the same tap the server uses), so a
test can wait for "a keyframe arrived" or "the numbering continued" on an event,
not on a timer.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiortc import RTCPeerConnection
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from streamserver.relay import tap
from streamserver.relay.keyframes import KEYFRAME_START


@dataclass(frozen=True, slots=True)
class Received:
    at_s: float
    ssrc: int
    seq: int
    ts: int
    keyframe: bool


@dataclass
class PacketLog:
    packets: list[Received] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, packet: RtpPacket, codec: RTCRtpCodecParameters) -> None:
        detect = KEYFRAME_START.get(codec.name.lower())
        keyframe = detect is not None and detect(packet.payload)
        self.packets.append(
            Received(
                time.monotonic(), packet.ssrc, packet.sequence_number, packet.timestamp, keyframe
            )
        )
        self.changed.set()

    @property
    def keyframes(self) -> int:
        return sum(p.keyframe for p in self.packets)

    async def wait(self, ready: Callable[[], bool], timeout_s: float = 5.0) -> None:
        """Wait until `ready()` holds, re-checking on every packet; fail after the deadline."""
        async with asyncio.timeout(timeout_s):
            while not ready():
                self.changed.clear()
                await self.changed.wait()


def record(pc: RTCPeerConnection, kind: str = "video") -> PacketLog:
    log = PacketLog()
    for transceiver in pc.getTransceivers():
        if transceiver.kind == kind:
            tap.tap_receiver(transceiver.receiver, log.add)
    return log


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout_s: float = 10.0) -> None:
    """Poll state that has no event of its own (another process, the server's tables)
    until `check()` holds; fail after the deadline."""
    async with asyncio.timeout(timeout_s):
        while True:
            result = check()
            if await result if inspect.isawaitable(result) else result:
                return
            await asyncio.sleep(0.05)
