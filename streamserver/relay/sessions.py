"""Publisher and viewer peers of every show, and their whole lifecycle.

A `ShowRelay` holds one publisher (at most) and any number of viewers, each in a
branch room, plus one `TrackFanout` per media kind. Whatever a peer holds (its
`RTCPeerConnection`, fan-out outputs, watchdog task) is released in one idempotent
`_close_*` path that every ending goes through: DELETE, ICE failure, DTLS close, a
connect deadline, the show ending, the server stopping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpReceiver,
    RTCRtpTransceiver,
    RTCSessionDescription,
)

from commerce.ids import BranchId, ShowId
from commerce.shows import ShowEvent
from commerce.values import value
from streamserver.relay import tap
from streamserver.relay.fanout import Output, TrackFanout, Variant
from streamserver.relay.keyframes import KeyframeThrottle
from streamserver.relay.offer import BadOffer, Offer, keep_loopback_candidates, rtx_capability

logger = logging.getLogger(__name__)

KINDS: Final = ("audio", "video")
MID_EXTENSION_URI: Final = "urn:ietf:params:rtp-hdrext:sdes:mid"
SENDER_REPORT_INTERVAL_S: Final = 1.0


class RelayError(Exception):
    """A request the relay refuses; `status` is the HTTP status to answer with."""

    status = 400


class NotLive(RelayError):
    status = 503


class PublisherConflict(RelayError):
    status = 409


class CodecMismatch(RelayError):
    status = 406


class UnknownSession(RelayError):
    status = 404


@value
class RelaySettings:
    ice_servers: tuple[RTCIceServer, ...] = ()
    loopback_only: bool = False  # every ICE host address is loopback: drop others' candidates
    pli_interval_s: float = 1.0
    send_buffer_bytes_max: int = 256 * 1024
    connect_timeout_s: float = 20.0


@value
class Answer:
    session_id: str
    sdp: str


@dataclass(eq=False)
class _Peer:
    id: str
    pc: RTCPeerConnection
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    closing: bool = False


@dataclass(eq=False)
class Publisher(_Peer):
    transceivers: dict[str, RTCRtpTransceiver] = field(default_factory=dict)


@dataclass(eq=False)
class Viewer(_Peer):
    branch: BranchId = field(default_factory=lambda: BranchId(""))
    transceivers: dict[str, RTCRtpTransceiver] = field(default_factory=dict)
    variants: dict[str, Variant] = field(default_factory=dict)
    outputs: dict[str, Output] = field(default_factory=dict)


ShowEventSink = Callable[[ShowId, ShowEvent], Awaitable[None]]


class ShowRelay:
    """The relay state of one show."""

    def __init__(self, show_id: ShowId, relay: Relay) -> None:
        self.show_id = show_id
        self.relay = relay
        self.publisher: Publisher | None = None
        self.viewers: dict[str, Viewer] = {}
        self.codecs: dict[str, RTCRtpCodecCapability] = {}  # what the publisher sends
        settings = relay.settings
        self.fanouts = {
            kind: TrackFanout(
                kind=kind,
                ssrc=secrets.randbits(32),
                request_upstream_keyframe=lambda kind=kind: self._send_pli(kind),  # type: ignore[misc]
                throttle=KeyframeThrottle(settings.pli_interval_s),
                send_buffer_bytes_max=settings.send_buffer_bytes_max,
            )
            for kind in KINDS
        }

    def _send_pli(self, kind: str) -> None:
        publisher, fanout = self.publisher, self.fanouts[kind]
        if publisher is None or fanout.source_ssrc is None or kind not in publisher.transceivers:
            return
        receiver = publisher.transceivers[kind].receiver
        self.relay.spawn(tap.send_pli(receiver, fanout.source_ssrc))

    def viewer_counts(self) -> Counter[BranchId]:
        """Viewers whose media is flowing, per branch room (not those still connecting)."""
        return Counter(v.branch for v in self.viewers.values() if v.outputs)


class Relay:
    """Every show's relay, keyed by show id; the one object the HTTP layer talks to."""

    def __init__(self, settings: RelaySettings, on_show_event: ShowEventSink) -> None:
        self.settings = settings
        self._on_show_event = on_show_event
        self.shows: dict[ShowId, ShowRelay] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._reports: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reports = asyncio.create_task(self._sender_reports())

    async def close(self) -> None:
        peers = [p for show in self.shows.values() for p in self._peers_of(show)]
        await asyncio.gather(*(self._close(p) for p in peers))
        if self._reports is not None:
            self._reports.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reports
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def stats(self) -> dict[str, int]:
        shows = self.shows.values()
        return {
            "shows": len(self.shows),
            "publishers": sum(s.publisher is not None for s in shows),
            "viewers": sum(len(s.viewers) for s in shows),
            "outputs": sum(len(f.outputs) for s in shows for f in s.fanouts.values()),
            "tasks": len(self._tasks),
        }

    def viewer_counts(self, show_id: ShowId) -> Counter[BranchId]:
        show = self.shows.get(show_id)
        return Counter() if show is None else show.viewer_counts()

    # -- publishing ---------------------------------------------------------------------

    async def publish(self, show_id: ShowId, offer: Offer) -> Answer:
        """Accept the show's publisher. Raises BadOffer or PublisherConflict."""
        show = self.shows.get(show_id) or self.shows.setdefault(show_id, ShowRelay(show_id, self))
        if show.publisher is not None:
            raise PublisherConflict("this show already has a live publisher")
        sending = [m for m in offer.media if m.direction in ("sendonly", "sendrecv")]
        if not sending:
            raise BadOffer("offer sends neither audio nor video")
        for media in sending:
            if not media.codecs:
                raise BadOffer(
                    f"offer's {media.kind} has no codec the relay forwards (VP8, H.264, Opus)"
                )
        publisher = Publisher(id=secrets.token_urlsafe(12), pc=self._new_peer_connection())
        show.publisher = publisher  # claimed now: a second POST meanwhile gets 409
        try:
            for media in sending:
                codec = media.codecs[0]  # the publisher's own preference
                transceiver = publisher.pc.addTransceiver(media.kind, direction="recvonly")
                rtx = rtx_capability(media.kind)
                transceiver.setCodecPreferences([codec] if rtx is None else [codec, rtx])
                publisher.transceivers[media.kind] = transceiver
            answer = await self._answer(publisher.pc, offer)
        except BaseException:
            show.publisher = None
            await publisher.pc.close()
            raise
        for media in sending:
            receiver = publisher.transceivers[media.kind].receiver
            self._use_publisher_codec(show, media.kind, media.codecs[0], receiver)
        self._watch(show, publisher)
        return Answer(publisher.id, answer)

    def _use_publisher_codec(
        self, show: ShowRelay, kind: str, codec: RTCRtpCodecCapability, receiver: RTCRtpReceiver
    ) -> None:
        if show.codecs.get(kind) not in (None, codec):
            # Viewers negotiated the old codec: they must renegotiate (their page reconnects).
            for viewer in list(show.viewers.values()):
                if kind in viewer.transceivers:
                    self.spawn(self._close(viewer))
        show.codecs[kind] = codec
        fanout = show.fanouts[kind]
        fanout.set_codec(codec.mimeType.split("/")[1], codec.clockRate)
        tap.tap_receiver(
            receiver,
            lambda p, _codec: fanout.forward(
                p.ssrc, p.sequence_number, p.timestamp, p.marker, p.payload
            ),
        )

    async def stop_publishing(self, show_id: ShowId, session_id: str) -> None:
        show = self.shows.get(show_id)
        if show is None or show.publisher is None or show.publisher.id != session_id:
            raise UnknownSession("no such publishing session")
        await self._close(show.publisher)

    # -- viewing ------------------------------------------------------------------------

    async def view(self, show_id: ShowId, branch: BranchId, offer: Offer) -> Answer:
        """Add a viewer in a branch room. Raises NotLive, CodecMismatch or BadOffer."""
        show = self.shows.get(show_id)
        if show is None or not show.codecs:
            raise NotLive("the show has not started yet")
        viewer = Viewer(id=secrets.token_urlsafe(12), pc=self._new_peer_connection(), branch=branch)
        try:
            for media in offer.media:
                codec = show.codecs.get(media.kind)
                if codec is None:
                    # Answer `inactive`: never receive (and so never decode) from a viewer.
                    viewer.pc.addTransceiver(media.kind, direction="inactive")
                    continue
                if codec not in media.codecs:
                    raise CodecMismatch(
                        f"the show sends {media.kind} as {codec.mimeType}, which the offer lacks"
                    )
                transceiver = viewer.pc.addTransceiver(tap.IdleTrack(media.kind), "sendonly")
                transceiver.setCodecPreferences([codec])
                tap.set_sender_ssrc(transceiver.sender, show.fanouts[media.kind].ssrc)
                viewer.transceivers[media.kind] = transceiver
            if not viewer.transceivers:
                raise CodecMismatch("the offer asks for no media the show sends")
            answer = await self._answer(viewer.pc, offer)
        except BaseException:
            await viewer.pc.close()
            raise
        for kind, transceiver in viewer.transceivers.items():
            viewer.variants[kind] = _variant(transceiver)
        show.viewers[viewer.id] = viewer
        self._watch(show, viewer)
        return Answer(viewer.id, answer)

    async def leave(self, show_id: ShowId, session_id: str) -> None:
        show = self.shows.get(show_id)
        viewer = None if show is None else show.viewers.get(session_id)
        if viewer is None:
            raise UnknownSession("no such viewing session")
        await self._close(viewer)

    async def end_show(self, show_id: ShowId) -> None:
        show = self.shows.pop(show_id, None)
        if show is not None:
            await asyncio.gather(*(self._close(p) for p in self._peers_of(show)))

    # -- lifecycle ----------------------------------------------------------------------

    def _new_peer_connection(self) -> RTCPeerConnection:
        return RTCPeerConnection(RTCConfiguration(iceServers=list(self.settings.ice_servers)))

    async def _answer(self, pc: RTCPeerConnection, offer: Offer) -> str:
        sdp = keep_loopback_candidates(offer.sdp) if self.settings.loopback_only else offer.sdp
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except (ValueError, LookupError) as exc:
            raise BadOffer(f"offer was refused: {exc}") from exc
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    def _watch(self, show: ShowRelay, peer: Publisher | Viewer) -> None:
        @peer.pc.on("connectionstatechange")
        async def on_state() -> None:
            state = peer.pc.connectionState
            if state == "connected" and not peer.connected.is_set():
                peer.connected.set()
                await self._on_connected(show, peer)
            elif state in ("failed", "closed"):
                await self._close(peer)

        self.spawn(self._deadline(peer))

    async def _deadline(self, peer: _Peer) -> None:
        try:
            await asyncio.wait_for(peer.connected.wait(), self.settings.connect_timeout_s)
        except TimeoutError:
            logger.info("peer %s did not connect in time", peer.id)
            await self._close(peer)

    async def _on_connected(self, show: ShowRelay, peer: Publisher | Viewer) -> None:
        if peer.closing:
            return
        if isinstance(peer, Publisher):
            logger.info("show %s: publisher %s connected", show.show_id, peer.id)
            for fanout in show.fanouts.values():
                fanout.hold_all_until_keyframe()
            await self._on_show_event(show.show_id, ShowEvent.PUBLISHER_STARTED)
            return
        for kind, transceiver in peer.transceivers.items():
            egress = tap.Egress.of(transceiver.sender)
            if egress is None:
                logger.warning("viewer %s connected without an egress; closing", peer.id)
                await self._close(peer)
                return
            fanout = show.fanouts[kind]
            peer.outputs[kind] = fanout.add(egress, peer.variants[kind])
            tap.tap_sender_feedback(
                transceiver.sender,
                on_keyframe_request=fanout.want_keyframe,
                on_nack=lambda lost, f=fanout, o=peer.outputs[kind]: f.retransmit(o, lost),  # type: ignore[misc]
            )

    async def _close(self, peer: _Peer) -> None:
        if peer.closing:
            return
        peer.closing = True
        peer.connected.set()  # ends its deadline watchdog
        show = next((s for s in self.shows.values() if peer in self._peers_of(s)), None)
        if show is not None and isinstance(peer, Viewer):
            for kind, output in peer.outputs.items():
                show.fanouts[kind].remove(output)
            show.viewers.pop(peer.id, None)
        await peer.pc.close()
        if show is not None and isinstance(peer, Publisher) and show.publisher is peer:
            show.publisher = None
            logger.info("show %s: publisher %s left", show.show_id, peer.id)
            await self._on_show_event(show.show_id, ShowEvent.PUBLISHER_STOPPED)

    @staticmethod
    def _peers_of(show: ShowRelay) -> list[_Peer]:
        peers: list[_Peer] = list(show.viewers.values())
        if show.publisher is not None:
            peers.append(show.publisher)
        return peers

    async def _sender_reports(self) -> None:
        """Keep every viewer sender's RTCP sender reports true (A/V sync in players)."""
        while True:
            await asyncio.sleep(SENDER_REPORT_INTERVAL_S)
            for show in self.shows.values():
                for viewer in show.viewers.values():
                    for kind, output in viewer.outputs.items():
                        report = show.fanouts[kind].sender_report(output)
                        tap.set_sender_report(viewer.transceivers[kind].sender, *report)


def _variant(transceiver: RTCRtpTransceiver) -> Variant:
    codec = transceiver._codecs[0]
    assert codec.payloadType is not None, "negotiated codecs carry a payload type"
    mid_id = next((e.id for e in transceiver._headerExtensions if e.uri == MID_EXTENSION_URI), None)
    return Variant.with_mid(codec.payloadType, mid_id, transceiver.mid)
