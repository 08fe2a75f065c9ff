"""One track of a show, forwarded to every viewer as encoded RTP.

Work that is the same for every viewer happens once per packet: sequence number and
timestamp mapping, keyframe detection, the header, the retransmission history. Per
viewer there is only what truly differs: its sequence-number shift (after it skipped
packets), its SRTP protection and the send. There is no queue: a packet goes out in
the call that received it, and a viewer whose kernel buffer is over the bound loses
packets (then waits for a keyframe), so the server never buffers without limit.

Viewers see one continuous stream across publisher reconnects: one SSRC per track
for the whole show, sequence numbers and timestamps rebased when the source changes.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from commerce.values import value
from streamserver.relay.keyframes import KEYFRAME_START, KeyframeThrottle
from streamserver.relay.tap import Egress

logger = logging.getLogger(__name__)

HISTORY_SIZE: Final = 1024  # packets kept for viewers' NACKs (about 5 s of 1.5 Mbps video)
NACK_BATCH_MAX: Final = 64  # retransmissions answered per NACK, so one NACK is bounded work
NTP_EPOCH_OFFSET_S: Final = 2_208_988_800  # 1900-01-01 to 1970-01-01

_HEADER = struct.Struct("!BBHII")
_SEQ = struct.Struct("!H")


@value
class Variant:
    """What a viewer's negotiation makes different in the packet header: PT and extensions."""

    payload_type: int
    extension: bytes = b""  # a whole RFC 8285 one-byte-header block, or empty

    @classmethod
    def with_mid(cls, payload_type: int, mid_extension_id: int | None, mid: str | None) -> Variant:
        if mid_extension_id is None or not mid:
            return cls(payload_type)
        value = mid.encode()[:16]
        element = bytes([(mid_extension_id << 4) | (len(value) - 1)]) + value
        element += b"\x00" * (-len(element) % 4)
        return cls(payload_type, b"\xbe\xde" + _SEQ.pack(len(element) // 4) + element)

    def packet(self, marker: int, seq: int, ts: int, ssrc: int, payload: bytes) -> bytes:
        first = 0x90 if self.extension else 0x80
        header = _HEADER.pack(first, (marker << 7) | self.payload_type, seq, ts, ssrc)
        return header + self.extension + payload


@dataclass(slots=True, eq=False)
class Output:
    """One viewer's end of a track."""

    egress: Egress
    variant: Variant
    waiting_keyframe: bool
    seq_shift: int = 0  # viewer seq = shared seq - shift (after packets it skipped)
    last_seq: int | None = None  # viewer seq of the last packet sent
    packets: int = 0
    octets: int = 0
    dropped: int = 0


@dataclass(slots=True, eq=False)
class TrackFanout:
    """Forwards one publisher track (audio or video) to any number of outputs."""

    kind: str
    ssrc: int
    request_upstream_keyframe: Callable[[], None]
    throttle: KeyframeThrottle
    send_buffer_bytes_max: int
    clock_rate: int = 90_000
    outputs: list[Output] = field(default_factory=list)
    keyframe_start: Callable[[bytes], bool] | None = None
    source_ssrc: int | None = None
    seq_delta: int = 0
    ts_delta: int = 0
    last_seq: int = 0
    last_ts: int = 0
    last_sent_at_s: float = 0.0  # wall clock, for sender reports
    forwarded: int = 0
    variants: dict[Variant, Variant] = field(default_factory=dict)  # interned, see add()
    keyframe_ts: int | None = None  # timestamp of the last picture a keyframe started
    history: list[tuple[int, int, int, bytes] | None] = field(
        default_factory=lambda: [None] * HISTORY_SIZE
    )

    def add(self, egress: Egress, variant: Variant) -> Output:
        # One instance per distinct variant: the per-packet `built` look-up then hashes
        # and compares by identity instead of hashing a tuple per viewer (about 5 % of
        # the relay's time in a profile at 100 viewers).
        variant = self.variants.setdefault(variant, variant)
        output = Output(egress, variant, waiting_keyframe=self.kind == "video")
        self.outputs.append(output)
        if output.waiting_keyframe:
            self.want_keyframe()
        return output

    def remove(self, output: Output) -> None:
        if output in self.outputs:
            self.outputs.remove(output)

    def want_keyframe(self) -> None:
        if self.throttle.request(time.monotonic()):
            self.request_upstream_keyframe()

    def hold_all_until_keyframe(self) -> None:
        for output in self.outputs:
            output.waiting_keyframe = self.kind == "video"
        if self.outputs and self.kind == "video":
            self.want_keyframe()

    def forward(self, ssrc: int, seq_in: int, ts_in: int, marker: int, payload: bytes) -> None:
        """Send one publisher packet (already unprotected and RTX-unwrapped) to every output."""
        rebased = ssrc != self.source_ssrc
        if rebased:
            self._rebase(ssrc, seq_in, ts_in)
        seq = (seq_in + self.seq_delta) & 0xFFFF
        ts = (ts_in + self.ts_delta) & 0xFFFFFFFF
        self.history[seq % HISTORY_SIZE] = (seq, ts, marker, payload)
        self.last_seq, self.last_ts = seq, ts
        self.last_sent_at_s = time.time()
        self.forwarded += 1
        # H.264 marks both the SPS and the IDR packet of one picture: a picture starts once.
        keyframe = (
            self.keyframe_start is not None
            and ts != self.keyframe_ts
            and self.keyframe_start(payload)
        )
        if keyframe:
            self.keyframe_ts = ts
            self.throttle.keyframe_arrived()
        elif rebased and any(o.waiting_keyframe for o in self.outputs):
            # Requests made before the new source's SSRC was known went nowhere.
            self.want_keyframe()
        elif self.throttle.pending_since_s is not None and self.throttle.due(time.monotonic()):
            self.request_upstream_keyframe()

        built: dict[int, bytes] = {}
        limit = self.send_buffer_bytes_max
        for output in self.outputs:
            if output.waiting_keyframe:
                if not keyframe:
                    continue
                output.waiting_keyframe = False
                if output.last_seq is not None:  # continue its numbering over the gap
                    output.seq_shift = (seq - output.last_seq - 1) & 0xFFFF
            variant = output.variant
            data = built.get(id(variant))
            if data is None:
                data = built[id(variant)] = variant.packet(marker, seq, ts, self.ssrc, payload)
            egress = output.egress
            if egress.buffered_bytes() > limit or egress.is_closing():
                self._drop(output)
                continue
            out_seq = seq
            if output.seq_shift:
                out_seq = (seq - output.seq_shift) & 0xFFFF
                shifted = bytearray(data)
                _SEQ.pack_into(shifted, 2, out_seq)
                data_out = bytes(shifted)
            else:
                data_out = data
            try:
                egress.sendto(egress.protect(data_out), egress.remote_addr)
            except Exception:
                # One viewer's broken session must not stop the others; its peer's
                # own state change removes it.
                logger.exception("dropping %s output after a send failure", self.kind)
                self._drop(output)
                continue
            output.last_seq = out_seq
            output.packets += 1
            output.octets += len(payload)

    def retransmit(self, output: Output, lost: list[int]) -> int:
        """Answer a viewer's NACK from the shared history; returns packets resent."""
        resent = 0
        for viewer_seq in lost[:NACK_BATCH_MAX]:
            seq = (viewer_seq + output.seq_shift) & 0xFFFF
            entry = self.history[seq % HISTORY_SIZE]
            if entry is None or entry[0] != seq:
                continue
            _, ts, marker, payload = entry
            egress = output.egress
            if egress.buffered_bytes() > self.send_buffer_bytes_max:
                break
            data = output.variant.packet(marker, viewer_seq, ts, self.ssrc, payload)
            egress.sendto(egress.protect(data), egress.remote_addr)
            resent += 1
        return resent

    def sender_report(self, output: Output) -> tuple[int, int, int, int]:
        """(NTP timestamp, RTP timestamp, packets, octets) for the output's next SR."""
        ntp = int((self.last_sent_at_s + NTP_EPOCH_OFFSET_S) * (1 << 32))
        return ntp, self.last_ts, output.packets, output.octets

    def _drop(self, output: Output) -> None:
        output.dropped += 1
        if self.kind == "video" and not output.waiting_keyframe:
            # The rest of this picture is lost to it: resume at the next keyframe.
            output.waiting_keyframe = True
            self.want_keyframe()

    def _rebase(self, ssrc: int, seq_in: int, ts_in: int) -> None:
        """A new source: continue our numbering where the last one stopped."""
        now = time.time()
        if self.source_ssrc is None and self.forwarded == 0:
            self.seq_delta, self.ts_delta = 0, 0
        else:
            elapsed_ticks = int(max(now - self.last_sent_at_s, 0.0) * self.clock_rate)
            self.seq_delta = (self.last_seq + 1 - seq_in) & 0xFFFF
            self.ts_delta = (self.last_ts + max(elapsed_ticks, 1) - ts_in) & 0xFFFFFFFF
        self.source_ssrc = ssrc
        self.throttle.sent_at_s = None  # the new source has been asked for nothing yet
        self.history = [None] * HISTORY_SIZE
        logger.info("%s source is now SSRC %d", self.kind, ssrc)

    def set_codec(self, codec_name: str, clock_rate: int) -> None:
        self.keyframe_start = KEYFRAME_START.get(codec_name.lower())
        self.clock_rate = clock_rate
