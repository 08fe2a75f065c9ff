"""The naive baseline for benchmarks/relay.py: aiortc's MediaRelay, decode once, encode per viewer.

A standalone aiohttp app with the URL shapes and JSON answers the benchmark uses
(merchant, branch and show endpoints are fakes: one show, no store, no auth), WHIP
ingest and WHEP viewing. The publisher's remote tracks are decoded by aiortc's
receiver (once); every viewer gets `MediaRelay.subscribe(track)` and its own
`RTCRtpSender`, which re-encodes every frame (VP8 via libvpx, Opus) in a thread:
aiortc's default way to relay, the design lianbo's passthrough relay replaces.

    python benchmarks/naive_relay.py --host 127.0.0.1 --port 0

logs "naive listening on http://HOST:PORT/" to stderr, like `lianbo serve`.

Two changes that cost nothing but let the benchmark match frames end to end: the
publisher receiver's RTP timestamps are not rebased to zero, and viewer senders add
no random timestamp origin, so a viewer sees each frame with the RTP timestamp the
publisher sent it with (lianbo's relay keeps timestamps the same way).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import socket
import sys
from pathlib import Path
from typing import Any

import aiortc.rtcrtpsender
from aiohttp import web
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamserver.relay import tap

logger = logging.getLogger("naive")
SHOW = "show_naive"
SDP = "application/sdp"

_random32 = aiortc.rtcrtpsender.random32


def _timestamp_origin_zero() -> int:
    # `RTCRtpSender._run_rtp` draws its RTP timestamp origin here; SSRCs stay random.
    if sys._getframe(1).f_code.co_name == "_run_rtp":
        return 0
    return int(_random32())


aiortc.rtcrtpsender.random32 = _timestamp_origin_zero


class _KeepTimestamps:
    def map(self, timestamp: int) -> int:
        return timestamp


class NaiveRelay:
    def __init__(self, buffered: bool) -> None:
        self.relay = MediaRelay()
        self.buffered = buffered
        self.sources: dict[str, MediaStreamTrack] = {}
        self.publisher: RTCPeerConnection | None = None
        self.viewers: dict[str, RTCPeerConnection] = {}
        self.branches: list[str] = []
        self.tasks: set[asyncio.Task[None]] = set()

    def peer(self) -> RTCPeerConnection:
        return RTCPeerConnection(RTCConfiguration(iceServers=[]))

    def watch(self, pc: RTCPeerConnection, on_end: Any) -> None:
        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await on_end()

    async def consume(self, track: MediaStreamTrack) -> None:
        # A host preview: keeps the source read (and decoded) whether or not anyone
        # watches, so decoded frames never pile up in the remote track's queue.
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()

    async def close(self) -> None:
        pcs = [*self.viewers.values()] + ([self.publisher] if self.publisher else [])
        await asyncio.gather(*(pc.close() for pc in pcs), return_exceptions=True)
        for task in self.tasks:
            task.cancel()


async def post_merchant(request: web.Request) -> web.Response:
    return web.json_response(
        {"merchant": {"id": "merchant_naive", "name": "naive"}, "operator_token": "naive"},
        status=201,
    )


async def post_branch(request: web.Request) -> web.Response:
    naive: NaiveRelay = request.app["naive"]
    branch = f"branch_{len(naive.branches)}"
    naive.branches.append(branch)
    return web.json_response({"id": branch, "name": branch}, status=201)


async def post_show(request: web.Request) -> web.Response:
    naive: NaiveRelay = request.app["naive"]
    rooms = [
        {"branch": {"id": b}, "viewers": 0, "whep_url": f"/whep/{SHOW}/{b}"} for b in naive.branches
    ]
    return web.json_response(
        {"id": SHOW, "host_token": "naive", "whip_url": f"/whip/{SHOW}", "rooms": rooms},
        status=201,
    )


async def post_whip(request: web.Request) -> web.Response:
    naive: NaiveRelay = request.app["naive"]
    if naive.publisher is not None:
        raise web.HTTPConflict(text="this show already has a live publisher")
    pc = naive.peer()
    naive.publisher = pc

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        naive.sources[track.kind] = track
        preview = naive.relay.subscribe(track, buffered=False)
        task = asyncio.ensure_future(naive.consume(preview))
        naive.tasks.add(task)

    async def ended() -> None:
        if naive.publisher is pc:
            naive.publisher = None
            naive.sources.clear()
        await pc.close()

    naive.watch(pc, ended)
    offer = (await request.read()).decode()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    for transceiver in pc.getTransceivers():
        transceiver.receiver._RTCRtpReceiver__timestamp_mapper = _KeepTimestamps()
    await pc.setLocalDescription(await pc.createAnswer())
    return _created(f"/whip/{SHOW}/publisher", pc)


async def delete_whip(request: web.Request) -> web.Response:
    naive: NaiveRelay = request.app["naive"]
    if naive.publisher is not None:
        await naive.publisher.close()
    return web.Response(status=200)


async def post_whep(request: web.Request) -> web.Response:
    naive: NaiveRelay = request.app["naive"]
    if not naive.sources:
        raise web.HTTPServiceUnavailable(text="the show has not started yet")
    pc = naive.peer()
    viewer_id = secrets.token_urlsafe(12)
    naive.viewers[viewer_id] = pc

    async def ended() -> None:
        naive.viewers.pop(viewer_id, None)
        await pc.close()

    naive.watch(pc, ended)
    offer = (await request.read()).decode()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    for transceiver in pc.getTransceivers():
        source = naive.sources.get(transceiver.kind)
        if source is not None:
            pc.addTrack(naive.relay.subscribe(source, buffered=naive.buffered))
    await pc.setLocalDescription(await pc.createAnswer())
    branch = request.match_info["branch"]
    return _created(f"/whep/{SHOW}/{branch}/{viewer_id}", pc)


async def delete_whep(request: web.Request) -> web.Response:
    naive: NaiveRelay = request.app["naive"]
    pc = naive.viewers.pop(request.match_info["session"], None)
    if pc is None:
        raise web.HTTPNotFound(text="no such viewing session")
    await pc.close()
    return web.Response(status=200)


def _created(location: str, pc: RTCPeerConnection) -> web.Response:
    return web.Response(
        status=201,
        body=pc.localDescription.sdp.encode(),
        headers={"Location": location, "Content-Type": SDP},
    )


def make_app(buffered: bool) -> web.Application:
    app = web.Application()
    naive = NaiveRelay(buffered)
    app["naive"] = naive
    app.router.add_post("/api/merchants", post_merchant)
    app.router.add_post("/api/merchants/{merchant}/branches", post_branch)
    app.router.add_post("/api/merchants/{merchant}/shows", post_show)
    app.router.add_post("/whip/{show}", post_whip)
    app.router.add_delete("/whip/{show}/{session}", delete_whip)
    app.router.add_post("/whep/{show}/{branch}", post_whep)
    app.router.add_delete("/whep/{show}/{branch}/{session}", delete_whep)

    async def shutdown(app: web.Application) -> None:
        await naive.close()

    app.on_shutdown.append(shutdown)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--buffered",
        action="store_true",
        help="MediaRelay's default unbounded per-viewer frame queue (default: latest frame "
        "only, so a viewer whose encoder lags loses frames instead of queueing them)",
    )
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args()
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    tap.restrict_host_addresses(["127.0.0.1"])
    sock = socket.create_server((args.host, args.port))
    host, port = sock.getsockname()[:2]
    print(f"naive listening on http://{host}:{port}/", file=sys.stderr, flush=True)
    web.run_app(make_app(args.buffered), sock=sock, print=None, access_log=None)


if __name__ == "__main__":
    main()
