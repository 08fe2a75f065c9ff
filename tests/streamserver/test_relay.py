"""The relay with real aiortc peers on loopback: pictures arrive, nothing is decoded or
encoded on the server, keyframes are requested and throttled, hosts can come back."""

from __future__ import annotations

import asyncio
import itertools
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
import pytest
from aiortc import RTCPeerConnection, VideoStreamTrack
from aiortc.mediastreams import AudioStreamTrack

from commerce.ids import ShowId
from streamserver.relay import client
from tests.conftest import Seeded, Server
from tests.relay_probe import eventually, record


@dataclass
class CodecLog:
    """Every aiortc decoder and encoder made in this process, and by whom."""

    decoder_threads: list[threading.Thread] = field(default_factory=list)
    encoder_senders: list[Any] = field(default_factory=list)


@pytest.fixture
def codec_log(monkeypatch: pytest.MonkeyPatch) -> CodecLog:
    log = CodecLog()
    get_decoder = aiortc.rtcrtpreceiver.get_decoder
    get_encoder = aiortc.rtcrtpsender.get_encoder

    def logged_decoder(codec: Any) -> Any:
        log.decoder_threads.append(threading.current_thread())
        return get_decoder(codec)

    def logged_encoder(codec: Any) -> Any:
        log.encoder_senders.append(sys._getframe(1).f_locals.get("self"))
        return get_encoder(codec)

    monkeypatch.setattr(aiortc.rtcrtpreceiver, "get_decoder", logged_decoder)
    monkeypatch.setattr(aiortc.rtcrtpsender, "get_encoder", logged_encoder)
    return log


def server_peers(server: Server, show: str) -> list[RTCPeerConnection]:
    relay = server.relay.shows[ShowId(show)]
    peers = [v.pc for v in relay.viewers.values()]
    if relay.publisher is not None:
        peers.append(relay.publisher.pc)
    return peers


async def first_frame(session: client.ClientSession) -> Any:
    video = next(t for t in session.pc.getTransceivers() if t.kind == "video")
    return await asyncio.wait_for(video.receiver.track.recv(), timeout=5)


@pytest.mark.parametrize("codec", ["video/VP8", "video/H264"])
async def test_two_branch_rooms_see_the_picture_and_the_server_codes_nothing(
    server: Server, seeded: Seeded, codec_log: CodecLog, codec: str
) -> None:
    publisher = await client.publish(
        server.http,
        seeded.whip_url,
        seeded.host_token,
        [AudioStreamTrack(), VideoStreamTrack()],
        video_mime_type=codec,
    )
    viewers = [await client.view(server.http, url) for url in seeded.whep_urls.values()]
    frames = await asyncio.gather(*(first_frame(v) for v in viewers))
    assert [(f.width, f.height) for f in frames] == [(640, 480), (640, 480)]
    for viewer in viewers:
        assert codec.split("/")[1] in viewer.answer.split("m=video")[1]
    async with server.http.get(server.url(f"/api/shows/{seeded.show}")) as r:
        show = await r.json()
    assert show["status"] == "live"
    assert [room["viewers"] for room in show["rooms"]] == [1, 1]

    peers = server_peers(server, seeded.show)
    server_senders = {t.sender for pc in peers for t in pc.getTransceivers()}
    server_decoder_threads = {
        t.receiver._RTCRtpReceiver__decoder_thread for pc in peers for t in pc.getTransceivers()
    }
    # The log saw the clients' own codecs: it would have seen the server's.
    assert codec_log.decoder_threads
    assert codec_log.encoder_senders
    assert not server_senders & set(codec_log.encoder_senders)
    assert not server_decoder_threads & set(codec_log.decoder_threads)

    for viewer in viewers:
        await viewer.close(server.http)
    await publisher.close(server.http, seeded.host_token)


async def test_a_late_viewer_gets_a_picture_and_its_pli_brings_another(
    server: Server, seeded: Seeded
) -> None:
    publisher = await client.publish(
        server.http, seeded.whip_url, seeded.host_token, [VideoStreamTrack()]
    )
    early = await client.view(server.http, seeded.whep_urls[seeded.branches[0]], kinds=("video",))
    await first_frame(early)
    # aiortc encoders send a keyframe only every 3000 frames: a picture within
    # seconds for a late joiner means its join asked the publisher for one.
    late = await client.view(server.http, seeded.whep_urls[seeded.branches[1]], kinds=("video",))
    log = record(late.pc)
    await log.wait(lambda: log.keyframes >= 1, timeout_s=3)
    assert log.packets[0].keyframe, "the viewer was held back until a keyframe"
    seqs = [p.seq for p in log.packets]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))

    keyframes_before = log.keyframes
    await log.wait(lambda: len(log.packets) > 40)
    assert log.keyframes == keyframes_before
    receiver = late.pc.getTransceivers()[0].receiver
    await receiver._send_rtcp_pli(log.packets[-1].ssrc)
    await log.wait(lambda: log.keyframes > keyframes_before, timeout_s=3)

    await late.close(server.http)
    await early.close(server.http)
    await publisher.close(server.http, seeded.host_token)


async def test_a_burst_of_joins_costs_the_publisher_about_one_keyframe(
    server: Server, seeded: Seeded
) -> None:
    publisher = await client.publish(
        server.http, seeded.whip_url, seeded.host_token, [VideoStreamTrack()]
    )
    sender = publisher.pc.getTransceivers()[0].sender
    requests: list[float] = []
    send_keyframe = sender._send_keyframe

    def counted() -> None:
        requests.append(asyncio.get_running_loop().time())
        send_keyframe()

    sender._send_keyframe = counted
    first = await client.view(server.http, seeded.whep_urls[seeded.branches[0]], kinds=("video",))
    await first_frame(first)
    requests.clear()
    urls = [seeded.whep_urls[b] for b in seeded.branches] * 6
    burst = await asyncio.gather(*(client.view(server.http, u, kinds=("video",)) for u in urls))
    logs = [record(v.pc) for v in burst]
    for log in logs:
        await log.wait(lambda log=log: log.keyframes >= 1)
        # Each joiner also sends its own PLIs while it waits; they are throttled too.
    assert 1 <= len(requests) <= 3, requests
    for viewer in [first, *burst]:
        await viewer.close(server.http)
    await publisher.close(server.http, seeded.host_token)


async def show_status(server: Server, show: str) -> str:
    async with server.http.get(server.url(f"/api/shows/{show}")) as r:
        return str((await r.json())["status"])


async def test_the_host_drops_and_comes_back_and_viewers_continue_on_the_same_peer(
    server: Server, seeded: Seeded
) -> None:
    publisher = await client.publish(
        server.http, seeded.whip_url, seeded.host_token, [VideoStreamTrack()]
    )
    viewer = await client.view(server.http, seeded.whep_urls[seeded.branches[0]], kinds=("video",))
    log = record(viewer.pc)
    await log.wait(lambda: len(log.packets) > 20)
    await publisher.close(server.http, seeded.host_token)
    assert await show_status(server, seeded.show) == "paused"
    before = len(log.packets)

    again = await client.publish(
        server.http, seeded.whip_url, seeded.host_token, [VideoStreamTrack()]
    )
    await log.wait(lambda: len(log.packets) > before + 20)
    assert await show_status(server, seeded.show) == "live"
    gap = (log.packets[before].seq - log.packets[before - 1].seq) & 0xFFFF
    assert gap == 1, "the numbering continues across the republish"
    assert log.packets[before].keyframe
    assert log.packets[before].ssrc == log.packets[0].ssrc
    assert viewer.pc.connectionState == "connected"
    await viewer.close(server.http)
    await again.close(server.http, seeded.host_token)


async def test_a_viewer_that_never_connects_is_dropped_at_the_deadline(
    server: Server, seeded: Seeded
) -> None:
    publisher = await client.publish(
        server.http, seeded.whip_url, seeded.host_token, [VideoStreamTrack()]
    )
    server.relay.settings = type(server.relay.settings)(loopback_only=True, connect_timeout_s=0.5)
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    await pc.close()  # gone before the answer: ICE can never complete
    async with server.http.post(
        seeded.whep_urls[seeded.branches[0]],
        data=pc.localDescription.sdp.encode(),
        headers={"Content-Type": "application/sdp"},
    ) as r:
        assert r.status == 201
    assert server.relay.stats()["viewers"] == 1
    await eventually(lambda: server.relay.stats()["viewers"] == 0, timeout_s=5)
    await publisher.close(server.http, seeded.host_token)
