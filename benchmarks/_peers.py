"""Client processes for benchmarks/relay.py: the publisher and a batch of viewers.

Started by the benchmark, not by hand:

    python benchmarks/_peers.py encode OUT [--seconds 10] [--kbps 1200]
    python benchmarks/_peers.py publish --media FILE --whip URL --token T --out FILE
    python benchmarks/_peers.py view --urls-file FILE --first-index I --out FILE [--rx raw|tap]

Control: the parent writes commands on stdin, one per line (`start`, `stop`, `report`,
`quit`); these processes answer with events on stdout, one JSON object per line. Logs
go to stderr.

Nothing here decodes or encodes video while the benchmark runs:

- `encode` renders a moving test pattern (ffmpeg's `testsrc2`) at 640x360 30 fps and
  encodes it once with libvpx (VP8) plus a tone with libopus, into a small file.
- The publisher's tracks yield those encoded packets as `av.Packet`s in real time
  (aiortc's sender packs them, `encoder.pack`), looping. It records when every RTP
  packet enters its DTLS transport, keyed by a hash of the payload (which a
  passthrough relay forwards unchanged), and when every video frame's last packet
  (marker bit) was sent, keyed by its RTP timestamp.
- Viewers never reach aiortc's jitter buffer or decoder: their receivers are tapped
  with `streamserver.relay.tap.tap_receiver` from the start. With `--rx raw` (the
  default) each viewer's nominated ICE socket is then tapped too, once connected: an
  RTP datagram is counted from its clear header (marker, sequence number, timestamp)
  without SRTP or aiortc's coroutine layers, and only sampled packets are unprotected
  to hash their payload. With `--rx tap` packets take aiortc's whole receive path
  (ICE queue, DTLS task, SRTP, RTP parsing) up to the receiver tap, which costs the
  client several times more CPU per packet.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import logging
import struct
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import av
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamserver.relay import client, tap

logger = logging.getLogger("bench.peers")

WIDTH, HEIGHT, FPS = 640, 360, 30
AUDIO_RATE, AUDIO_SAMPLES = 48_000, 960  # Opus, 20 ms
VIDEO_TIME_BASE = fractions.Fraction(1, 90_000)
AUDIO_TIME_BASE = fractions.Fraction(1, AUDIO_RATE)
VIDEO_TICKS = 90_000 // FPS
MAGIC = b"LBMEDIA1"
_RECORD = struct.Struct("!BI")  # kind (0 video, 1 audio), length
ROOMS = 4  # viewers are spread over this many branch rooms


# -- shared helpers ---------------------------------------------------------------------


def payload_key(payload: bytes) -> int:
    """What identifies an RTP payload across the relay: a hash of its start, and its length."""
    return (zlib.crc32(payload[:32]) << 16) | (len(payload) & 0xFFFF)


def rtp_payload(data: bytes) -> bytes:
    """The payload of a plain (unprotected) RTP packet, padding excluded."""
    first = data[0]
    offset = 12 + 4 * (first & 0x0F)
    if first & 0x10:  # header extension
        offset += 4 + 4 * int.from_bytes(data[offset + 2 : offset + 4])
    end = len(data)
    if first & 0x20:  # padding
        end -= data[-1]
    return data[offset:end]


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def commands() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def wait_connected(pc: RTCPeerConnection, timeout_s: float) -> bool:
    done = asyncio.get_running_loop().create_future()

    def check() -> None:
        if pc.connectionState in ("connected", "failed", "closed") and not done.done():
            done.set_result(pc.connectionState == "connected")

    pc.on("connectionstatechange", check)
    check()
    try:
        return bool(await asyncio.wait_for(done, timeout_s))
    except TimeoutError:
        return False


def video_codec_payload_types(pc: RTCPeerConnection) -> dict[str, set[int]]:
    """Negotiated payload types per kind, media codecs only (RTX excluded)."""
    kinds: dict[str, set[int]] = {"audio": set(), "video": set()}
    for transceiver in pc.getTransceivers():
        for codec in transceiver._codecs:
            if codec.name.lower() != "rtx" and codec.payloadType is not None:
                kinds.setdefault(transceiver.kind, set()).add(codec.payloadType)
    return kinds


# -- encode once ------------------------------------------------------------------------


def encode_media(out: Path, seconds: int, kbps: int) -> dict[str, Any]:
    """Render and encode `seconds` of video and audio; returns their bitrates."""
    frames = seconds * FPS
    video: list[bytes] = []
    src = av.open(f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}", format="lavfi")
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    enc.time_base = fractions.Fraction(1, FPS)
    enc.framerate = fractions.Fraction(FPS, 1)
    enc.bit_rate = kbps * 1000
    enc.gop_size = FPS  # a keyframe every second: late joiners wait at most that long
    enc.options = {
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "minrate": str(kbps * 1000),
        "maxrate": str(kbps * 1000),
    }
    keyframes = 0
    for i, frame in enumerate(src.decode(video=0)):
        if i >= frames:
            break
        frame = frame.reformat(format="yuv420p")
        frame.pts, frame.time_base, frame.pict_type = i, enc.time_base, 0
        for packet in enc.encode(frame):
            keyframes += packet.is_keyframe
            video.append(bytes(packet))
    video += [bytes(p) for p in enc.encode(None)]
    src.close()
    video = video[:frames]

    audio: list[bytes] = []
    src = av.open(
        f"sine=frequency=440:sample_rate={AUDIO_RATE},asetnsamples=n={AUDIO_SAMPLES}",
        format="lavfi",
    )
    aenc = av.CodecContext.create("libopus", "w")
    aenc.sample_rate, aenc.layout, aenc.format = AUDIO_RATE, "stereo", "s16"
    aenc.bit_rate = 48_000
    aenc.time_base = AUDIO_TIME_BASE
    resampler = av.AudioResampler(format="s16", layout="stereo", rate=AUDIO_RATE)
    n = 0
    for frame in src.decode(audio=0):
        if n >= seconds * AUDIO_RATE // AUDIO_SAMPLES:
            break
        for chunk in resampler.resample(frame):
            chunk.pts = n * AUDIO_SAMPLES
            n += 1
            audio += [bytes(p) for p in aenc.encode(chunk)]
    src.close()

    with out.open("wb") as f:
        f.write(MAGIC)
        for kind, packets in ((0, video), (1, audio)):
            for data in packets:
                f.write(_RECORD.pack(kind, len(data)))
                f.write(data)
    return {
        "video_frames": len(video),
        "video_keyframes": keyframes,
        "video_kbps": round(sum(map(len, video)) * 8 / seconds / 1000, 1),
        "audio_packets": len(audio),
        "audio_kbps": round(sum(map(len, audio)) * 8 / seconds / 1000, 1),
    }


def load_media(path: Path) -> tuple[list[bytes], list[bytes]]:
    data = path.read_bytes()
    assert data.startswith(MAGIC), f"{path} is not a benchmark media file"
    video: list[bytes] = []
    audio: list[bytes] = []
    pos = len(MAGIC)
    while pos < len(data):
        kind, length = _RECORD.unpack_from(data, pos)
        pos += _RECORD.size
        (video if kind == 0 else audio).append(data[pos : pos + length])
        pos += length
    return video, audio


# -- publisher --------------------------------------------------------------------------


class EncodedTrack(MediaStreamTrack):
    """Yields pre-encoded packets in real time, looping, for aiortc's sender to pack."""

    def __init__(
        self, kind: str, packets: list[bytes], interval_s: float, ticks: int, base: Any
    ) -> None:
        super().__init__()
        self.kind = kind
        self._packets = packets
        self._interval_s = interval_s
        self._ticks = ticks
        self._time_base = base
        self._index = 0
        self._start_s: float | None = None

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.time()
        if self._start_s is None:
            self._start_s = now
        due = self._start_s + self._index * self._interval_s
        if due > now:
            await asyncio.sleep(due - now)
        packet = av.Packet(self._packets[self._index % len(self._packets)])
        packet.pts = self._index * self._ticks
        packet.time_base = self._time_base
        self._index += 1
        return packet


class SendLog:
    """When each RTP packet entered the publisher's DTLS transport (before SRTP)."""

    def __init__(self) -> None:
        self.video_pts: set[int] = set()
        self.packets: dict[int, list[float]] = {}
        self.frames: dict[int, float] = {}  # video RTP timestamp -> marker packet sent
        self.sent = 0
        self.video_bytes = 0

    def record(self, data: bytes, now: float) -> None:
        self.sent += 1
        payload = rtp_payload(data)
        self.packets.setdefault(payload_key(payload), []).append(now)
        b1 = data[1]
        if b1 & 0x7F in self.video_pts:
            self.video_bytes += len(payload)
            if b1 & 0x80:
                self.frames[int.from_bytes(data[4:8])] = now


def log_sends(dtls: Any, log: SendLog) -> None:
    send_rtp = dtls._send_rtp

    async def logged_send_rtp(data: bytes) -> None:
        log.record(data, time.time())
        await send_rtp(data)

    dtls._send_rtp = logged_send_rtp


async def run_publisher(args: argparse.Namespace) -> None:
    tap.restrict_host_addresses(["127.0.0.1"])
    video, audio = load_media(args.media)
    tracks: list[MediaStreamTrack] = [
        EncodedTrack("video", video, 1 / FPS, VIDEO_TICKS, VIDEO_TIME_BASE)
    ]
    if audio and not args.no_audio:
        interval = AUDIO_SAMPLES / AUDIO_RATE
        tracks.append(EncodedTrack("audio", audio, interval, AUDIO_SAMPLES, AUDIO_TIME_BASE))
    log = SendLog()
    control = await commands()
    async with aiohttp.ClientSession() as http:
        session = await client.publish(http, args.whip, args.token, tracks)
        pc = session.pc
        log.video_pts = video_codec_payload_types(pc)["video"]
        transports = {id(t.sender.transport): t.sender.transport for t in pc.getTransceivers()}
        for dtls in transports.values():
            log_sends(dtls, log)
        if not await wait_connected(pc, 20):
            emit("failed", state=pc.connectionState)
            return
        emit("ready")
        started = time.time()
        while line := (await control.readline()).decode().strip():
            if line == "quit":
                break
        elapsed = time.time() - started
        args.out.write_text(
            json.dumps(
                {
                    "packets": {str(k): v for k, v in log.packets.items()},
                    "frames": {str(k): v for k, v in log.frames.items()},
                    "sent": log.sent,
                    "video_kbps": round(log.video_bytes * 8 / max(elapsed, 1e-9) / 1000, 1),
                }
            )
        )
        with contextlib.suppress(Exception):
            await session.close(http, args.token)
    emit("done")


# -- viewers ----------------------------------------------------------------------------


class Window:
    """The measurement window, shared by every viewer of the process."""

    on = False
    started_s = 0.0
    stopped_s = 0.0
    first_frames = 0  # viewers that have received video
    all_receiving: asyncio.Event | None = None
    viewers_connected = 0

    @classmethod
    def first_frame(cls) -> None:
        cls.first_frames += 1
        cls.check()

    @classmethod
    def check(cls) -> None:
        if cls.all_receiving is not None and cls.first_frames >= cls.viewers_connected:
            cls.all_receiving.set()


class Viewer:
    """What one viewer saw. `on_video`/`on_audio` run once per received RTP packet."""

    __slots__ = (
        "audio_packets",
        "connected",
        "expected",
        "first_frame_s",
        "frame_samples",
        "frames",
        "index",
        "joined_s",
        "last_seq",
        "last_ts",
        "octets",
        "packet_samples",
        "sample",
        "video_packets",
    )

    def __init__(self, index: int, sample: int) -> None:
        self.index = index
        self.sample = sample
        self.connected = False
        self.joined_s = 0.0
        self.first_frame_s: float | None = None
        self.last_ts: int | None = None
        self.last_seq: int | None = None
        self.reset()

    def reset(self) -> None:
        self.frames = 0
        self.video_packets = 0
        self.audio_packets = 0
        self.octets = 0
        self.expected = 0
        self.packet_samples: list[tuple[int, float]] = []
        self.frame_samples: list[tuple[int, float]] = []

    def on_video(
        self,
        seq: int,
        ts: int,
        marker: int,
        size: int,
        now: float,
        payload: Callable[[], bytes | None],
    ) -> None:
        if self.first_frame_s is None:
            self.first_frame_s = now - self.joined_s
            Window.first_frame()
        last_seq, self.last_seq = self.last_seq, seq
        new_frame = ts != self.last_ts
        self.last_ts = ts
        if not Window.on:
            return
        self.video_packets += 1
        self.octets += size
        if last_seq is not None:
            gap = (seq - last_seq) & 0xFFFF
            self.expected += gap if gap < 0x8000 else 0
        else:
            self.expected += 1
        if new_frame:
            self.frames += 1
        if (seq + self.index) % self.sample == 0:
            data = payload()
            if data is not None:
                self.packet_samples.append((payload_key(data), now))
        if marker and (self.frames + self.index) % self.sample == 0:
            self.frame_samples.append((ts, now))

    def on_audio(self, size: int) -> None:
        if Window.on:
            self.audio_packets += 1
            self.octets += size

    def report(self) -> dict[str, Any]:
        span = max(Window.stopped_s - Window.started_s, 1e-9)
        return {
            "index": self.index,
            "connected": self.connected,
            "fps": round(self.frames / span, 2),
            "kbps": round(self.octets * 8 / span / 1000, 1),
            "video_packets": self.video_packets,
            "audio_packets": self.audio_packets,
            "lost": max(self.expected - self.video_packets, 0),
            "expected": self.expected,
            "first_frame_s": self.first_frame_s,
        }


def tap_viewer(pc: RTCPeerConnection, viewer: Viewer) -> None:
    """Tap every receiver (no jitter buffer, no decoder): aiortc's whole receive path."""

    def on_packet(packet: Any, codec: Any) -> None:
        now = time.time()
        if codec.mimeType.startswith("video/"):
            payload = packet.payload
            viewer.on_video(
                packet.sequence_number,
                packet.timestamp,
                packet.marker,
                len(payload),
                now,
                lambda: payload,
            )
        else:
            viewer.on_audio(len(packet.payload))

    for transceiver in pc.getTransceivers():
        tap.tap_receiver(transceiver.receiver, on_packet)


def tap_viewer_socket(pc: RTCPeerConnection, viewer: Viewer) -> bool:
    """Count RTP at the viewer's nominated ICE socket; everything else goes to aiortc."""
    transceiver = pc.getTransceivers()[0]
    dtls = transceiver.receiver.transport
    srtp = getattr(dtls, "_rx_srtp", None)
    connection = getattr(dtls.transport, "_connection", None)
    pair = None if connection is None else connection._nominated.get(1)
    if srtp is None or pair is None:
        return False
    kinds = video_codec_payload_types(pc)
    video_pts = frozenset(kinds["video"])
    audio_pts = frozenset(kinds["audio"])
    unprotect = srtp.unprotect
    protocol = pair.protocol
    original = protocol.datagram_received
    on_video, on_audio = viewer.on_video, viewer.on_audio

    def datagram_received(data: bytes, addr: Any) -> None:
        if 127 < data[0] < 192 and len(data) > 12:
            pt = data[1] & 0x7F
            if not 63 < pt < 96:  # RTP, not RTCP (RFC 5761)
                if pt in video_pts:

                    def payload() -> bytes | None:
                        try:
                            return rtp_payload(unprotect(data))
                        except Exception:
                            return None

                    on_video(
                        (data[2] << 8) | data[3],
                        int.from_bytes(data[4:8]),
                        data[1] >> 7,
                        len(data),
                        time.time(),
                        payload,
                    )
                elif pt in audio_pts:
                    on_audio(len(data))
                return
        original(data, addr)

    protocol.datagram_received = datagram_received
    return True


async def run_viewers(args: argparse.Namespace) -> None:
    tap.restrict_host_addresses(["127.0.0.1"])
    urls: list[str] = json.loads(args.urls_file.read_text())
    viewers = [Viewer(args.first_index + i, args.sample) for i in range(len(urls))]
    sessions: list[client.ClientSession | None] = [None] * len(urls)
    limit = asyncio.Semaphore(args.concurrency)
    control = await commands()

    async def join(i: int, http: aiohttp.ClientSession) -> None:
        viewer = viewers[i]
        async with limit:
            viewer.joined_s = time.time()
            try:
                session = await client.view(http, urls[i])
            except Exception as exc:
                logger.warning("viewer %d could not join: %s", viewer.index, exc)
                return
            sessions[i] = session
            tap_viewer(session.pc, viewer)  # before any packet can reach a decoder
            if not await wait_connected(session.pc, 30):
                logger.warning("viewer %d did not connect", viewer.index)
                return
        if args.rx == "raw" and not tap_viewer_socket(session.pc, viewer):
            logger.warning("viewer %d: no nominated pair/SRTP; using the receiver tap", i)
        viewer.connected = True

    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=args.concurrency)
    ) as http:
        await asyncio.gather(*(join(i, http) for i in range(len(urls))))
        connected = sum(v.connected for v in viewers)
        emit("joined", connected=connected, failed=len(viewers) - connected)
        Window.all_receiving = asyncio.Event()
        Window.viewers_connected = connected
        Window.check()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(Window.all_receiving.wait(), 15)
        emit("receiving", viewers=sum(v.first_frame_s is not None for v in viewers))
        while line := (await control.readline()).decode().strip():
            if line == "start":
                for viewer in viewers:
                    viewer.reset()
                Window.started_s = time.time()
                Window.on = True
                emit("started")
            elif line == "stop":
                Window.on = False
                Window.stopped_s = time.time()
                args.out.write_text(
                    json.dumps(
                        {
                            "window": [Window.started_s, Window.stopped_s],
                            "viewers": [v.report() for v in viewers],
                            "packet_samples": [s for v in viewers for s in v.packet_samples],
                            "frame_samples": [s for v in viewers for s in v.frame_samples],
                        }
                    )
                )
                emit("stopped")
            elif line == "quit":
                break
        await asyncio.gather(
            *(s.pc.close() for s in sessions if s is not None), return_exceptions=True
        )
    emit("done")


# -- entry ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands_ = parser.add_subparsers(dest="command", required=True)
    enc = commands_.add_parser("encode")
    enc.add_argument("out", type=Path)
    enc.add_argument("--seconds", type=int, default=10)
    enc.add_argument("--kbps", type=int, default=1200)
    pub = commands_.add_parser("publish")
    pub.add_argument("--media", type=Path, required=True)
    pub.add_argument("--whip", required=True)
    pub.add_argument("--token", required=True)
    pub.add_argument("--out", type=Path, required=True)
    pub.add_argument("--no-audio", action="store_true")
    view = commands_.add_parser("view")
    view.add_argument("--urls-file", type=Path, required=True)
    view.add_argument("--first-index", type=int, default=0)
    view.add_argument("--out", type=Path, required=True)
    view.add_argument("--rx", choices=["raw", "tap"], default="raw")
    view.add_argument("--sample", type=int, default=1, help="record 1 in K packets' latency")
    view.add_argument("--concurrency", type=int, default=8, help="viewers joining at once")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    if args.command == "encode":
        emit("encoded", **encode_media(args.out, args.seconds, args.kbps))
    elif args.command == "publish":
        asyncio.run(run_publisher(args))
    else:
        asyncio.run(run_viewers(args))


if __name__ == "__main__":
    main()
