"""Keyframe detection on RTP payloads and the upstream keyframe-request throttle.

Pure: bytes and times in, booleans out. The relay never decodes, so it must see in
a packet's first bytes whether a keyframe starts there (RFC 7741 for VP8, RFC 6184
for H.264), and it must turn many viewers' requests into about one upstream PLI per
interval (mediasoup and Janus do the same: unthrottled, viewers' PLIs push a
publisher to 2-3x its bitrate).
"""

from __future__ import annotations

from dataclasses import dataclass

_H264_IDR = 5
_H264_SPS = 7
_H264_STAP_A = 24
_H264_FU_A = 28


def vp8_keyframe_start(payload: bytes) -> bool:
    """Whether an RTP VP8 payload starts a keyframe (RFC 7741 §4.2, §4.3)."""
    if len(payload) < 1:
        return False
    desc = payload[0]
    start_of_partition = desc & 0x10
    partition_id = desc & 0x07
    if not start_of_partition or partition_id != 0:
        return False
    i = 1
    if desc & 0x80:  # X: extension byte follows
        if len(payload) < 2:
            return False
        ext = payload[1]
        i = 2
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            if len(payload) <= i:
                return False
            i += 2 if payload[i] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            i += 1
        if ext & 0x30:  # T or K: TID/KEYIDX byte
            i += 1
    # VP8 payload header: P bit (bit 0) clear means keyframe; a keyframe carries
    # the start code 9d 01 2a after the 3-byte frame tag (RFC 6386 §9.1).
    if len(payload) < i + 6:
        return False
    return not payload[i] & 0x01 and payload[i + 3 : i + 6] == b"\x9d\x01\x2a"


def h264_keyframe_start(payload: bytes) -> bool:
    """Whether an RTP H.264 payload starts an IDR access unit (RFC 6184 §5.6-5.8)."""
    if len(payload) < 1:
        return False
    nal_type = payload[0] & 0x1F
    if nal_type in (_H264_IDR, _H264_SPS):
        return True
    if nal_type == _H264_STAP_A:
        i = 1
        while i + 2 < len(payload):
            size = int.from_bytes(payload[i : i + 2], "big")
            if payload[i + 2] & 0x1F in (_H264_IDR, _H264_SPS):
                return True
            i += 2 + size
        return False
    if nal_type == _H264_FU_A and len(payload) >= 2:
        fu_header = payload[1]
        return bool(fu_header & 0x80) and fu_header & 0x1F == _H264_IDR
    return False


KEYFRAME_START = {"vp8": vp8_keyframe_start, "h264": h264_keyframe_start}


@dataclass(slots=True)
class KeyframeThrottle:
    """Aggregates keyframe requests into at most one upstream PLI per interval.

    `request(now)` is called for every reason to want a keyframe (a viewer joined,
    a viewer's PLI/FIR, a viewer that fell behind); it answers whether to send a PLI
    upstream now. A request inside the interval is remembered and `due(now)` answers
    True once the interval has passed, unless a keyframe arrived after the request
    was made (that keyframe already served it).
    """

    interval_s: float
    sent_at_s: float | None = None
    pending_since_s: float | None = None
    keyframes_seen: int = 0
    plis_sent: int = 0

    def request(self, now_s: float) -> bool:
        if self.sent_at_s is None or now_s - self.sent_at_s >= self.interval_s:
            self._sent(now_s)
            return True
        if self.pending_since_s is None:
            self.pending_since_s = now_s
        return False

    def due(self, now_s: float) -> bool:
        if self.pending_since_s is None or self.sent_at_s is None:
            return False
        if now_s - self.sent_at_s < self.interval_s:
            return False
        self._sent(now_s)
        return True

    def keyframe_arrived(self) -> None:
        # Every pending request was made before this keyframe started, so its
        # requester (a joiner held back, a viewer that lost a picture) starts here.
        self.keyframes_seen += 1
        self.pending_since_s = None

    def _sent(self, now_s: float) -> None:
        self.sent_at_s = now_s
        self.pending_since_s = None
        self.plis_sent += 1
