"""Reading WHIP/WHEP SDP offers before any peer exists: validation and codec choice.

Everything here is a pure function of the offer text, so malformed offers are
refused (400) before the server allocates sockets, and the codec a publisher will
send is known before its answer is made: viewers are then offered exactly that codec.
"""

from __future__ import annotations

import ipaddress
from typing import Final

from aiortc import RTCRtpCodecCapability, RTCRtpCodecParameters, RTCRtpSender
from aiortc.rtcpeerconnection import is_codec_compatible
from aiortc.sdp import MediaDescription, SessionDescription

from commerce.values import value

OFFER_BYTES_MAX: Final = 64 * 1024
# What the relay forwards without decoding (aiortc can packetise these, and every
# browser decodes them). Order is ours only when an offer lists several equally.
RELAYED_MIME_TYPES: Final = ("video/vp8", "video/h264", "audio/opus")


class BadOffer(ValueError):
    """The offer cannot be used; the message says why, for the client's developer."""


@value
class OfferedMedia:
    kind: str  # "audio" | "video"
    mid: str
    direction: str
    codecs: tuple[RTCRtpCodecCapability, ...]  # ours that the offer accepts, offer order


@value
class Offer:
    sdp: str
    media: tuple[OfferedMedia, ...]

    def of_kind(self, kind: str) -> OfferedMedia | None:
        return next((m for m in self.media if m.kind == kind), None)


def read_offer(body: bytes) -> Offer:
    """Parse and check an offer; raises `BadOffer` with a reason a client can act on."""
    if len(body) > OFFER_BYTES_MAX:
        raise BadOffer(f"offer is larger than {OFFER_BYTES_MAX} bytes")
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise BadOffer("offer is not UTF-8 text") from exc
    if not text.startswith("v=0"):
        raise BadOffer("offer is not SDP (it must start with v=0)")
    try:
        description = SessionDescription.parse(text)
    except Exception as exc:  # aiortc's parser raises whatever a bad line provokes
        raise BadOffer(f"offer SDP could not be parsed: {exc!r}") from exc
    media: list[OfferedMedia] = []
    for m in description.media:
        if m.kind not in ("audio", "video"):
            continue
        if m.ice is None or not m.ice.usernameFragment or not m.ice.password:
            raise BadOffer(f"{m.kind} section has no ICE username fragment or password")
        if m.dtls is None or not m.dtls.fingerprints:
            raise BadOffer(f"{m.kind} section has no DTLS fingerprint")
        if not m.rtcp_mux:
            raise BadOffer(f"{m.kind} section does not use rtcp-mux")
        if not m.rtp.muxId:
            raise BadOffer(f"{m.kind} section has no mid")
        if any(other.kind == m.kind for other in media):
            raise BadOffer(f"offer has more than one {m.kind} section")
        media.append(OfferedMedia(m.kind, m.rtp.muxId, m.direction or "sendrecv", _ours(m)))
    if not media:
        raise BadOffer("offer has no audio or video section")
    return Offer(text, tuple(media))


def _ours(media: MediaDescription) -> tuple[RTCRtpCodecCapability, ...]:
    capabilities = RTCRtpSender.getCapabilities(media.kind).codecs
    chosen: list[RTCRtpCodecCapability] = []
    for offered in media.rtp.codecs:
        if offered.mimeType.lower() not in RELAYED_MIME_TYPES:
            continue
        for cap in capabilities:
            ours = RTCRtpCodecParameters(cap.mimeType, cap.clockRate, parameters=cap.parameters)
            if cap not in chosen and is_codec_compatible(ours, offered):
                chosen.append(cap)
                break
    return tuple(chosen)


def rtx_capability(kind: str) -> RTCRtpCodecCapability | None:
    caps = RTCRtpSender.getCapabilities(kind).codecs
    return next((c for c in caps if c.mimeType.lower() == f"{kind}/rtx"), None)


def keep_loopback_candidates(sdp: str) -> str:
    """Drop ICE candidates a loopback-only server cannot reach (and mDNS names)."""
    lines = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            parts = line.split()
            if len(parts) < 5 or not _is_loopback(parts[4]):
                continue
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
