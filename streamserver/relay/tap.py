"""Every use of aiortc's and aioice's private names, in one place.

aiortc has no public API to receive RTP without decoding it or to send encoded
RTP without its packetiser (see shared notes, "aiortc as a relay"). The relay
needs both, so this module reaches into aiortc 1.16.0 / aioice 0.13.0 (pinned in
pyproject.toml). `check_internals()` runs at start-up and in a test: if an upgrade
moves any of these names, the server refuses to start instead of relaying nothing.

What it provides:
- `tap_receiver`: replaces a publisher receiver's packet handler. It keeps what the
  publisher needs from a receiver (receiver reports, NACKs, REMB, RTX unwrapping)
  and hands each packet to the relay, never to the jitter buffer or a decoder.
- `Egress`: a viewer's SRTP session and nominated ICE pair, to protect and send a
  datagram with no coroutine in between, and to see how much the kernel could not
  take yet.
- `tap_sender_feedback`: routes a viewer's PLI/FIR and NACK to the relay.
- `IdleTrack`: a track that never yields, so an aiortc sender's own send loop waits
  forever (no encoder is ever created) while its RTCP loop sends sender reports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import aioice.ice
from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtpPacket,
    pack_remb_fci,
    unwrap_rtx,
)

_RECEIVER = "_RTCRtpReceiver__"
_SENDER = "_RTCRtpSender__"

RECEIVER_PRIVATES: Final = (
    "_handle_rtp_packet",
    "_send_rtcp",
    "_send_rtcp_nack",
    "_send_rtcp_pli",
    f"{_RECEIVER}codecs",
    f"{_RECEIVER}remote_streams",
    f"{_RECEIVER}rtx_ssrc",
    f"{_RECEIVER}nack_generator",
    f"{_RECEIVER}remote_bitrate_estimator",
    f"{_RECEIVER}rtcp_ssrc",
)
SENDER_PRIVATES: Final = (
    "_ssrc",
    "_handle_rtcp_packet",
    f"{_SENDER}ntp_timestamp",
    f"{_SENDER}rtp_timestamp",
    f"{_SENDER}packet_count",
    f"{_SENDER}octet_count",
)


def check_internals() -> None:
    """Fail loudly if aiortc/aioice no longer have the private names this relay uses."""
    missing: list[str] = []
    transport = _DummyTransport()
    receiver = RTCRtpReceiver("video", transport)  # type: ignore[arg-type]
    sender = RTCRtpSender("video", transport)  # type: ignore[arg-type]
    missing += [f"RTCRtpReceiver.{n}" for n in RECEIVER_PRIVATES if not hasattr(receiver, n)]
    missing += [f"RTCRtpSender.{n}" for n in SENDER_PRIVATES if not hasattr(sender, n)]
    if not callable(getattr(aioice.ice, "get_host_addresses", None)):
        missing.append("aioice.ice.get_host_addresses")
    connection = aioice.ice.Connection(ice_controlling=False)
    if not isinstance(getattr(connection, "_nominated", None), dict):
        missing.append("aioice.ice.Connection._nominated")
    if missing:
        raise RuntimeError("aiortc/aioice internals moved: " + ", ".join(missing))


class _DummyTransport:
    state = "new"


def restrict_host_addresses(addresses: Iterable[str]) -> None:
    """Gather ICE host candidates only on `addresses` (aioice skips 127.0.0.1 otherwise)."""
    chosen = list(addresses)

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = host_addresses


# -- publisher side -------------------------------------------------------------------


def receiver_codecs(receiver: RTCRtpReceiver) -> dict[int, RTCRtpCodecParameters]:
    codecs: dict[int, RTCRtpCodecParameters] = getattr(receiver, f"{_RECEIVER}codecs")
    return codecs


def tap_receiver(
    receiver: RTCRtpReceiver,
    on_packet: Callable[[RtpPacket, RTCRtpCodecParameters], None],
) -> None:
    """Send the receiver's packets to `on_packet` instead of its jitter buffer and decoder.

    Mirrors `RTCRtpReceiver._handle_rtp_packet` of aiortc 1.16.0 up to the point where
    it depayloads: statistics for receiver reports, REMB, RTX unwrapping, NACKs.
    """
    codecs = receiver_codecs(receiver)
    remote_streams: dict[int, Any] = getattr(receiver, f"{_RECEIVER}remote_streams")
    rtx_ssrc: dict[int, int] = getattr(receiver, f"{_RECEIVER}rtx_ssrc")
    nack_generator = getattr(receiver, f"{_RECEIVER}nack_generator")
    estimator = getattr(receiver, f"{_RECEIVER}remote_bitrate_estimator")

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        if not receiver._enabled:
            return
        rtcp_ssrc = getattr(receiver, f"{_RECEIVER}rtcp_ssrc")
        if estimator is not None and packet.extensions.abs_send_time is not None:
            remb = estimator.add(
                abs_send_time=packet.extensions.abs_send_time,
                arrival_time_ms=arrival_time_ms,
                payload_size=len(packet.payload) + packet.padding_size,
                ssrc=packet.ssrc,
            )
            if rtcp_ssrc is not None and remb is not None:
                await receiver._send_rtcp(
                    RtcpPsfbPacket(
                        fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(*remb)
                    )
                )
        codec = codecs.get(packet.payload_type)
        if codec is None:
            return
        stream = remote_streams.get(packet.ssrc)
        if stream is None:
            stream = remote_streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        stream.add(packet)
        if codec.name == "rtx":
            original_ssrc = rtx_ssrc.get(packet.ssrc)
            apt = codec.parameters.get("apt")
            if original_ssrc is None or len(packet.payload) < 2 or apt not in codecs:
                return  # padding-only probes (empty payload) end here too
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)
            codec = codecs[apt]
        if nack_generator is not None and nack_generator.add(packet):
            await receiver._send_rtcp_nack(packet.ssrc, sorted(nack_generator.missing))
        if packet.payload:
            on_packet(packet, codec)

    receiver._handle_rtp_packet = handle_rtp_packet  # type: ignore[method-assign]


async def send_pli(receiver: RTCRtpReceiver, media_ssrc: int) -> None:
    """Ask the publisher for a keyframe (RFC 4585 §6.3.1)."""
    await receiver._send_rtcp_pli(media_ssrc)


# -- viewer side ----------------------------------------------------------------------


class IdleTrack(MediaStreamTrack):
    """A track whose `recv()` waits until stopped: the sender's encode loop never runs."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._stopped = asyncio.Event()

    async def recv(self) -> Any:
        await self._stopped.wait()
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        self._stopped.set()


def set_sender_ssrc(sender: RTCRtpSender, ssrc: int) -> None:
    """Give a viewer's sender the relay's shared SSRC; call before `createAnswer`."""
    sender._ssrc = ssrc


def set_sender_report(
    sender: RTCRtpSender, ntp_timestamp: int, rtp_timestamp: int, packets: int, octets: int
) -> None:
    """Feed the numbers the sender's own RTCP loop puts in its next sender report."""
    setattr(sender, f"{_SENDER}ntp_timestamp", ntp_timestamp)
    setattr(sender, f"{_SENDER}rtp_timestamp", rtp_timestamp)
    setattr(sender, f"{_SENDER}packet_count", packets & 0xFFFFFFFF)
    setattr(sender, f"{_SENDER}octet_count", octets & 0xFFFFFFFF)


def tap_sender_feedback(
    sender: RTCRtpSender,
    on_keyframe_request: Callable[[], None],
    on_nack: Callable[[list[int]], None],
) -> None:
    """Route a viewer's PLI/FIR and NACK to the relay; other RTCP goes to aiortc as before."""
    original = sender._handle_rtcp_packet

    async def handle_rtcp_packet(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            on_keyframe_request()
        elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            on_nack(packet.lost)
        else:
            await original(packet)

    sender._handle_rtcp_packet = handle_rtcp_packet  # type: ignore[method-assign]


@dataclass(slots=True)
class Egress:
    """Protect-and-send for one viewer: its SRTP session and its nominated ICE pair.

    Bound methods are kept so the per-packet loop does no attribute look-ups.
    """

    protect: Callable[[bytes], bytes]
    sendto: Callable[[bytes, tuple[str, int]], None]
    buffered_bytes: Callable[[], int]  # what the kernel has not taken yet
    is_closing: Callable[[], bool]
    remote_addr: tuple[str, int]

    @classmethod
    def of(cls, sender: RTCRtpSender) -> Egress | None:
        """The viewer's egress once DTLS and ICE are connected, else None."""
        dtls = sender.transport
        srtp = getattr(dtls, "_tx_srtp", None)
        connection = getattr(dtls.transport, "_connection", None)
        pair = None if connection is None else connection._nominated.get(1)
        transport = None if pair is None else pair.protocol.transport
        if srtp is None or pair is None or transport is None:
            return None
        return cls(
            srtp.protect,
            transport.sendto,
            transport.get_write_buffer_size,
            transport.is_closing,
            pair.remote_addr,
        )
