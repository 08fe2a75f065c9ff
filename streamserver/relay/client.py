"""A WHIP/WHEP client on aiortc: publish tracks to, or view a show from, a lianbo server.

Used by the tests and benchmarks, and the shape a node will use to pull a show from
the node that ingests it (DESIGN.md "Scale"). Offers are complete (no trickle ICE).
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from yarl import URL

SDP = "application/sdp"


class SignalingError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


@dataclass
class ClientSession:
    pc: RTCPeerConnection
    location: str  # absolute URL to DELETE
    answer: str

    async def close(self, http: aiohttp.ClientSession, token: str | None = None) -> None:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        async with http.delete(self.location, headers=headers):
            pass
        await self.pc.close()


async def publish(
    http: aiohttp.ClientSession,
    url: str,
    token: str,
    tracks: list[MediaStreamTrack],
    ice_servers: list[RTCIceServer] | None = None,
    video_mime_type: str | None = None,
) -> ClientSession:
    """WHIP: send `tracks` to `url` (…/whip/<show>) with the show's host token.

    `video_mime_type` ("video/H264", "video/VP8") limits the offer to that video codec.
    """
    pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers or []))
    for track in tracks:
        transceiver = pc.addTransceiver(track, direction="sendonly")
        if track.kind == "video" and video_mime_type is not None:
            transceiver.setCodecPreferences(
                [
                    codec
                    for codec in RTCRtpSender.getCapabilities("video").codecs
                    if codec.mimeType.lower() in (video_mime_type.lower(), "video/rtx")
                ]
            )
    return await _negotiate(http, pc, url, {"Authorization": f"Bearer {token}"})


async def view(
    http: aiohttp.ClientSession,
    url: str,
    kinds: tuple[str, ...] = ("audio", "video"),
    ice_servers: list[RTCIceServer] | None = None,
) -> ClientSession:
    """WHEP: receive a branch room's stream from `url` (…/whep/<show>/<branch>)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers or []))
    for kind in kinds:
        pc.addTransceiver(kind, direction="recvonly")
    return await _negotiate(http, pc, url, {})


async def _negotiate(
    http: aiohttp.ClientSession, pc: RTCPeerConnection, url: str, headers: dict[str, str]
) -> ClientSession:
    try:
        await pc.setLocalDescription(await pc.createOffer())
        async with http.post(
            url,
            data=pc.localDescription.sdp.encode(),
            headers={**headers, "Content-Type": SDP},
        ) as response:
            body = await response.text()
            if response.status != 201:
                raise SignalingError(response.status, body)
            location = str(response.url.join(URL(response.headers["Location"])))
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    except BaseException:
        await pc.close()
        raise
    return ClientSession(pc, location, body)
