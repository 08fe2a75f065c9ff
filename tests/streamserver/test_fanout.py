"""TrackFanout on its own: the header, per-viewer numbering, hold-back, drops and NACKs.

Egress is a recording fake here (this is the pure forwarding logic); the real sockets
and SRTP are exercised by test_relay.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from streamserver.relay.fanout import TrackFanout, Variant
from streamserver.relay.keyframes import KeyframeThrottle
from streamserver.relay.tap import Egress

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
KEY = b"\x10\x00\x00\x00\x9d\x01\x2a" + b"k" * 20  # VP8: S=1, partition 0, P=0, start code
DELTA = b"\x10\x01\x00\x00\x00\x00" + b"d" * 20


@dataclass
class Wire:
    """What one viewer's socket was handed, and how full its kernel buffer pretends to be."""

    sent: list[bytes] = field(default_factory=list)
    buffered: int = 0

    def egress(self) -> Egress:
        return Egress(
            protect=lambda data: data,
            sendto=lambda data, addr: self.sent.append(data),
            buffered_bytes=lambda: self.buffered,
            is_closing=lambda: False,
            remote_addr=("127.0.0.1", 9),
        )

    def packets(self) -> list[RtpPacket]:
        extensions = HeaderExtensionsMap()
        extensions.configure(
            RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(id=3, uri=MID_URI)])
        )
        return [RtpPacket.parse(data, extensions) for data in self.sent]


def video_fanout(plis: list[int]) -> TrackFanout:
    fanout = TrackFanout(
        kind="video",
        ssrc=1234,
        request_upstream_keyframe=lambda: plis.append(1),
        throttle=KeyframeThrottle(interval_s=0.0),
        send_buffer_bytes_max=1000,
    )
    fanout.set_codec("VP8", 90000)
    return fanout


def test_a_joining_viewer_waits_for_a_keyframe_and_asks_for_one() -> None:
    plis: list[int] = []
    fanout = video_fanout(plis)
    wire = Wire()
    fanout.add(wire.egress(), Variant.with_mid(96, 3, "1"))
    assert plis == [1]
    fanout.forward(ssrc=77, seq_in=100, ts_in=0, marker=1, payload=DELTA)
    assert wire.sent == []
    fanout.forward(ssrc=77, seq_in=101, ts_in=3000, marker=0, payload=KEY)
    fanout.forward(ssrc=77, seq_in=102, ts_in=3000, marker=1, payload=b"rest")
    packets = wire.packets()
    assert [p.payload for p in packets] == [KEY, b"rest"]
    assert [p.marker for p in packets] == [0, 1]
    assert {p.ssrc for p in packets} == {1234}
    assert {p.payload_type for p in packets} == {96}
    assert {p.extensions.mid for p in packets} == {"1"}
    assert packets[1].sequence_number == (packets[0].sequence_number + 1) & 0xFFFF


def test_viewers_of_one_variant_get_the_same_bytes() -> None:
    fanout = video_fanout([])
    wires = [Wire() for _ in range(3)]
    for wire in wires:
        fanout.add(wire.egress(), Variant.with_mid(96, 3, "1"))
    other = Wire()
    fanout.add(other.egress(), Variant.with_mid(100, 3, "0"))
    fanout.forward(ssrc=77, seq_in=5, ts_in=90, marker=1, payload=KEY)
    assert wires[0].sent == wires[1].sent == wires[2].sent
    assert other.packets()[0].payload_type == 100
    assert other.packets()[0].extensions.mid == "0"
    assert other.packets()[0].payload == KEY


def test_audio_flows_at_once() -> None:
    fanout = TrackFanout(
        kind="audio",
        ssrc=9,
        request_upstream_keyframe=lambda: None,
        throttle=KeyframeThrottle(1.0),
        send_buffer_bytes_max=1000,
        clock_rate=48000,
    )
    wire = Wire()
    fanout.add(wire.egress(), Variant(111))
    fanout.forward(ssrc=1, seq_in=1, ts_in=960, marker=0, payload=b"opus")
    assert [p.payload for p in wire.packets()] == [b"opus"]


def test_a_viewer_over_its_buffer_bound_drops_and_resumes_at_a_keyframe_without_a_gap() -> None:
    plis: list[int] = []
    fanout = video_fanout(plis)
    slow, fast = Wire(), Wire()
    fanout.add(slow.egress(), Variant(96))
    fanout.add(fast.egress(), Variant(96))
    fanout.forward(ssrc=7, seq_in=1, ts_in=0, marker=1, payload=KEY)
    slow.buffered = 5000  # the kernel could not take what it had
    for seq in range(2, 12):
        fanout.forward(ssrc=7, seq_in=seq, ts_in=seq * 3000, marker=1, payload=DELTA)
    assert len(slow.sent) == 1
    assert len(fast.sent) == 11
    assert len(plis) == 3  # two joins, then one for the viewer that fell behind
    slow.buffered = 0
    fanout.forward(ssrc=7, seq_in=12, ts_in=12 * 3000, marker=1, payload=DELTA)
    assert len(slow.sent) == 1  # still waiting for a picture it can decode
    fanout.forward(ssrc=7, seq_in=13, ts_in=13 * 3000, marker=1, payload=KEY)
    seqs = [p.sequence_number for p in slow.packets()]
    assert seqs[1] == (seqs[0] + 1) & 0xFFFF  # its numbering continues: no NACK storm
    assert slow.packets()[1].payload == KEY
    assert fast.packets()[-1].sequence_number != seqs[1]


def test_a_new_source_continues_the_numbering() -> None:
    fanout = video_fanout([])
    wire = Wire()
    fanout.add(wire.egress(), Variant(96))
    fanout.forward(ssrc=1, seq_in=60000, ts_in=1_000_000, marker=1, payload=KEY)
    fanout.forward(ssrc=1, seq_in=60001, ts_in=1_003_000, marker=1, payload=DELTA)
    fanout.hold_all_until_keyframe()  # what a republish does
    fanout.forward(ssrc=2, seq_in=7, ts_in=42, marker=1, payload=KEY)
    first, second, third = wire.packets()
    assert third.sequence_number == (second.sequence_number + 1) & 0xFFFF
    assert third.timestamp - second.timestamp > 0
    assert third.ssrc == first.ssrc == 1234


def test_nacks_are_answered_from_the_shared_history_in_the_viewers_numbering() -> None:
    fanout = video_fanout([])
    wire = Wire()
    output = fanout.add(wire.egress(), Variant(96))
    for seq in range(1, 6):
        payload = KEY if seq == 1 else DELTA + bytes([seq])
        fanout.forward(ssrc=3, seq_in=seq, ts_in=seq * 3000, marker=1, payload=payload)
    sent = wire.packets()
    wire.sent.clear()
    lost = [sent[2].sequence_number, sent[3].sequence_number, 999]
    assert fanout.retransmit(output, lost) == 2
    resent = wire.packets()
    assert [(p.sequence_number, p.payload) for p in resent] == [
        (sent[2].sequence_number, sent[2].payload),
        (sent[3].sequence_number, sent[3].payload),
    ]


def test_a_new_source_that_starts_without_a_keyframe_is_asked_for_one_at_once() -> None:
    plis: list[int] = []
    fanout = video_fanout(plis)
    fanout.throttle = KeyframeThrottle(interval_s=60.0)
    wire = Wire()
    fanout.add(wire.egress(), Variant(96))
    fanout.forward(ssrc=1, seq_in=1, ts_in=0, marker=1, payload=KEY)
    fanout.hold_all_until_keyframe()  # the old source left; this request reached nobody
    asked = len(plis)
    fanout.forward(ssrc=2, seq_in=500, ts_in=9, marker=1, payload=DELTA)
    assert len(plis) == asked + 1  # despite the 60 s interval
    assert len(wire.sent) == 1
