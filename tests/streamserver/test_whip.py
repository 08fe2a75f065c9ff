"""WHIP and WHEP as real clients speak them: status codes, headers, CORS, bad offers."""

from __future__ import annotations

import pytest
from aiortc import RTCPeerConnection, VideoStreamTrack
from aiortc.mediastreams import AudioStreamTrack

from streamserver.config import Config
from streamserver.relay import client
from tests.conftest import Seeded, Server

SDP = {"Content-Type": "application/sdp"}


async def offer(*kinds: str, direction: str = "recvonly") -> str:
    pc = RTCPeerConnection()
    for kind in kinds:
        pc.addTransceiver(kind, direction=direction)
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return str(sdp)


async def test_whip_answers_201_with_sdp_and_an_absolute_location(
    server: Server, seeded: Seeded
) -> None:
    session = await client.publish(
        server.http, seeded.whip_url, seeded.host_token, [AudioStreamTrack(), VideoStreamTrack()]
    )
    try:
        assert session.location.startswith(server.url(f"/whip/{seeded.show}/"))
        video = session.answer.split("m=video")[1]
        assert "VP8/90000" in video
        assert "H264" not in video  # exactly the publisher's first choice
        assert "a=recvonly" in video
    finally:
        await session.close(server.http, seeded.host_token)


async def test_a_second_publisher_is_a_409_and_delete_frees_the_show(
    server: Server, seeded: Seeded
) -> None:
    first = await client.publish(
        server.http, seeded.whip_url, seeded.host_token, [VideoStreamTrack()]
    )
    with pytest.raises(client.SignalingError) as refused:
        await client.publish(server.http, seeded.whip_url, seeded.host_token, [VideoStreamTrack()])
    assert refused.value.status == 409
    auth = {"Authorization": f"Bearer {seeded.host_token}"}
    async with server.http.delete(first.location, headers=auth) as r:
        assert r.status == 200
    async with server.http.delete(first.location, headers=auth) as r:
        assert r.status == 404
    await first.pc.close()
    second = await client.publish(
        server.http, seeded.whip_url, seeded.host_token, [VideoStreamTrack()]
    )
    await second.close(server.http, seeded.host_token)


BAD_OFFERS = [
    b"",
    b"hello",
    b"v=0\r\n",
    b"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
    b"a=rtpmap:96 VP8/90000\r\na=mid:0\r\na=sendonly\r\n",  # no ICE credentials, no DTLS
    b"v=0\r\nm=video notaport RTP/AVP 0\r\n",
    b"v=0\r\n" + b"a=x\r\n" * 20_000,  # over the size bound
    "v=0\r\ns=\u00e9\r\n".encode("latin-1"),  # not UTF-8
]


@pytest.mark.parametrize("body", BAD_OFFERS)
async def test_malformed_offers_are_a_4xx_and_the_server_carries_on(
    server: Server, seeded: Seeded, body: bytes
) -> None:
    headers = {**SDP, "Authorization": f"Bearer {seeded.host_token}"}
    async with server.http.post(seeded.whip_url, data=body, headers=headers) as r:
        assert r.status in (400, 413), await r.text()
        assert (await r.json())["field"] == "sdp"
    whep = seeded.whep_urls[seeded.branches[0]]
    async with server.http.post(whep, data=body, headers=SDP) as r:
        assert r.status in (400, 413, 503)
    session = await client.publish(
        server.http, seeded.whip_url, seeded.host_token, [VideoStreamTrack()]
    )
    await session.close(server.http, seeded.host_token)


async def test_offers_the_relay_cannot_use_are_refused_with_a_reason(
    server: Server, seeded: Seeded
) -> None:
    headers = {**SDP, "Authorization": f"Bearer {seeded.host_token}"}
    vp9_only = (
        (await offer("video", direction="sendonly"))
        .replace("VP8/90000", "VP9/90000")
        .replace("H264/90000", "AV1/90000")
    )
    two_videos = await offer("video", "video", direction="sendonly")
    nothing_sent = await offer("video", direction="recvonly")
    for body, words in [
        (vp9_only, "no codec the relay forwards"),
        (two_videos, "more than one video"),
        (nothing_sent, "neither audio nor video"),
    ]:
        async with server.http.post(seeded.whip_url, data=body.encode(), headers=headers) as r:
            assert r.status == 400
            assert words in (await r.json())["message"]
    async with server.http.post(seeded.whip_url, data=b"v=0", headers=headers) as r:
        assert r.status == 400
    plain = {"Authorization": f"Bearer {seeded.host_token}", "Content-Type": "text/plain"}
    async with server.http.post(seeded.whip_url, data=b"v=0", headers=plain) as r:
        assert r.status == 415


async def test_trickle_patch_is_405_and_options_tells_what_works(
    server: Server, seeded: Seeded
) -> None:
    session = await client.publish(
        server.http, seeded.whip_url, seeded.host_token, [VideoStreamTrack()]
    )
    try:
        patch_headers = {
            "Authorization": f"Bearer {seeded.host_token}",
            "Content-Type": "application/trickle-ice-sdpfrag",
            "If-Match": "*",
        }
        async with server.http.patch(
            session.location, data=b"a=end-of-candidates\r\n", headers=patch_headers
        ) as r:
            assert r.status == 405
            assert "PATCH" not in r.headers["Allow"]
        async with server.http.options(session.location) as r:
            assert r.status == 204
            assert "PATCH" not in r.headers["Allow"]
    finally:
        await session.close(server.http, seeded.host_token)
    async with server.http.options(seeded.whip_url) as r:
        assert r.status == 204
        assert r.headers["Accept-Post"] == "application/sdp"


async def test_cors_lets_players_on_other_origins_in_even_on_errors(
    server: Server, seeded: Seeded
) -> None:
    preflight = {
        "Origin": "https://shop.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    async with server.http.options(seeded.whip_url, headers=preflight) as r:
        assert r.status == 204
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        allowed = r.headers["Access-Control-Allow-Headers"].lower()
        assert "authorization" in allowed
        assert "content-type" in allowed
        assert "location" in r.headers["Access-Control-Expose-Headers"].lower()
    async with server.http.post(seeded.whip_url, data=b"v=0", headers=SDP) as r:
        assert r.status == 401
        assert r.headers["Access-Control-Allow-Origin"] == "*"
    async with server.http.post(
        server.url("/whep/s_nosuchshow000/b_nosuchbranch00"), data=b"", headers=SDP
    ) as r:
        assert r.status == 404
        assert r.headers["Access-Control-Allow-Origin"] == "*"


async def test_whep_before_the_show_starts_is_503_with_retry_after(
    server: Server, seeded: Seeded
) -> None:
    whep = seeded.whep_urls[seeded.branches[0]]
    async with server.http.post(
        whep, data=(await offer("audio", "video")).encode(), headers=SDP
    ) as r:
        assert r.status == 503
        assert int(r.headers["Retry-After"]) > 0


async def test_a_viewer_that_cannot_take_the_publishers_codec_is_a_406(
    server: Server, seeded: Seeded
) -> None:
    session = await client.publish(
        server.http, seeded.whip_url, seeded.host_token, [VideoStreamTrack()]
    )
    try:
        h264_only = "\r\n".join(
            line
            for line in (await offer("video")).split("\r\n")
            if "VP8" not in line and "a=rtpmap:97 rtx" not in line and "apt=97" not in line
        )
        whep = seeded.whep_urls[seeded.branches[0]]
        async with server.http.post(whep, data=h264_only.encode(), headers=SDP) as r:
            assert r.status == 406
            assert "video/VP8" in (await r.json())["message"]
    finally:
        await session.close(server.http, seeded.host_token)


async def test_an_ended_show_is_gone_for_publishers_and_viewers(
    server: Server, seeded: Seeded
) -> None:
    auth = {"Authorization": f"Bearer {seeded.host_token}"}
    async with server.http.post(server.url(f"/api/shows/{seeded.show}/end"), headers=auth) as r:
        assert r.status == 200
    body = (await offer("video", direction="sendonly")).encode()
    async with server.http.post(seeded.whip_url, data=body, headers={**SDP, **auth}) as r:
        assert r.status == 410
    whep = seeded.whep_urls[seeded.branches[1]]
    async with server.http.post(whep, data=body, headers=SDP) as r:
        assert r.status == 410


@pytest.fixture
def config(tmp_path: object) -> Config:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    return Config(
        data_dir=tmp_path / "data",
        ice_hosts=("127.0.0.1",),
        ice_servers=("stun:stun.example.net:3478", "turn:alice:s3cret@turn.example.net:3478"),
    )


async def test_ice_servers_are_announced_in_link_headers(server: Server, seeded: Seeded) -> None:
    async with server.http.options(seeded.whip_url) as r:
        links = r.headers.getall("Link")
    assert '<stun:stun.example.net:3478>; rel="ice-server"' in links
    assert (
        '<turn:turn.example.net:3478>; rel="ice-server"; username="alice"; '
        'credential="s3cret"; credential-type="password"'
    ) in links
