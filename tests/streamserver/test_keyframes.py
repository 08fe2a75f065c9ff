"""Keyframe detection on real encoder output, and the upstream PLI throttle."""

from __future__ import annotations

import fractions

import pytest
from aiortc.codecs import get_encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av import VideoFrame

from streamserver.relay.keyframes import (
    KeyframeThrottle,
    h264_keyframe_start,
    vp8_keyframe_start,
)

CODECS = {
    "vp8": (
        RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96),
        vp8_keyframe_start,
    ),
    "h264": (
        RTCRtpCodecParameters(
            mimeType="video/H264",
            clockRate=90000,
            payloadType=102,
            parameters={"packetization-mode": "1", "profile-level-id": "42e01f"},
        ),
        h264_keyframe_start,
    ),
}


def encoded_frames(codec: RTCRtpCodecParameters, count: int) -> list[tuple[bool, list[bytes]]]:
    """(keyframe forced?, RTP payloads) for `count` frames of a moving picture."""
    encoder = get_encoder(codec)
    frames = []
    for i in range(count):
        frame = VideoFrame(320, 240, "yuv420p")
        for n, plane in enumerate(frame.planes):
            plane.update(
                bytes([(i * 7 + n * 50 + k) % 256 for k in range(256)]) * (plane.buffer_size // 256)
            )
        frame.pts = i * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        forced = i in (0, 5)
        payloads, _ = encoder.encode(frame, forced)
        frames.append((forced, payloads))
    return frames


@pytest.mark.parametrize("name", ["vp8", "h264"])
def test_keyframes_start_at_their_first_packet_and_delta_frames_never_do(name: str) -> None:
    codec, detect = CODECS[name]
    frames = encoded_frames(codec, 10)
    for forced, payloads in frames:
        if forced:
            assert detect(payloads[0])
    deltas = [payloads for _, payloads in frames if not detect(payloads[0])]
    assert deltas, "the encoder made no delta frame to check"
    assert not any(detect(p) for payloads in deltas for p in payloads)


@pytest.mark.parametrize("detect", [vp8_keyframe_start, h264_keyframe_start])
@pytest.mark.parametrize("payload", [b"", b"\x90", b"\x90\x80", b"\x10\x00", b"\x1c", b"\x78\x00"])
def test_truncated_payloads_are_not_keyframes(detect: object, payload: bytes) -> None:
    assert callable(detect)
    assert detect(payload) is False


def test_a_burst_of_requests_costs_one_pli_per_interval() -> None:
    throttle = KeyframeThrottle(interval_s=1.0)
    sent = [throttle.request(10.0 + i * 0.01) for i in range(50)]
    assert sent.count(True) == 1
    assert not throttle.due(10.9)
    assert throttle.due(11.0)  # the requests after the first PLI get one more
    assert not throttle.due(11.5)


def test_a_keyframe_arriving_satisfies_pending_requests() -> None:
    throttle = KeyframeThrottle(interval_s=1.0)
    assert throttle.request(0.0)
    assert not throttle.request(0.2)
    throttle.keyframe_arrived()
    assert not throttle.due(1.5)
    assert throttle.plis_sent == 1


def test_a_request_after_the_interval_is_sent_at_once() -> None:
    throttle = KeyframeThrottle(interval_s=1.0)
    assert throttle.request(0.0)
    assert throttle.request(1.0)
    assert throttle.plis_sent == 2
