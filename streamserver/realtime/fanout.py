"""A show's frames on their way to its rooms' sockets: queued per room, written in passes.

The hub applies an event at once and queues the frame it makes for each room here; the
show's writer task then takes everything queued in one pass, and each socket gets one
write holding every frame queued for its room since the last pass (whole websocket
frames back to back). A burst of cards so costs one kernel `send()` per socket instead
of one per card: the kernel's send is most of a fan-out's cost (issue #8). A pass
writes the sockets a slice at a time (`SendPool`: the loop thread and helper threads
together) and yields to the loop between slices, so requests, heartbeats and joins go
on while thousands of sockets are written. Frames queued during a pass go out in the
next one, after it: every socket still gets every frame once, in order.

Each socket remembers the last sequence number it was sent (`Client.seq`, its snapshot's
or replay's at first): a frame it already has from its snapshot or replay is skipped.
A socket being caught up after a resume has its frames set aside (`Client.held`) until
the hub has replayed what it missed. Frames without a number of their own (viewer
counts, queued with seq None) carry the position of the frames queued before them.

Writing frames to the transport directly (not through aiohttp's `send_bytes`) is
correct because per-message compression is off: the bytes are the same for everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from commerce.ids import BranchId, ShowId
from streamserver.realtime.sendpool import SendPool, Unfinished

logger = logging.getLogger(__name__)

SEND_BUFFER_BYTES_MAX: Final = 256 * 1024  # unsent bytes past which a socket is dropped
NOTSENT_LOWAT_BYTES: Final = 64 * 1024  # unsent bytes the kernel takes before send() stops
SLICE_SOCKETS: Final = 1024  # sockets written between two yields to the loop (~5 ms)
HOLDING: Final = sys.maxsize  # Client.seq of a socket that takes no live frames now


@dataclass(eq=False, slots=True)
class Client:
    """One shopper's socket in one branch room."""

    ws: web.WebSocketResponse
    transport: asyncio.Transport
    fd: int  # for SendPool's helpers; -1: only through the transport
    show: ShowId
    branch: BranchId
    shopper: str | None
    errors: int = 0
    # The last seq this socket was sent; HOLDING before it joins, while it is caught
    # up (then live frames wait in `held`) and after it leaves.
    seq: int = HOLDING
    held: list[tuple[int, bytes]] | None = None


def bound_socket(transport: asyncio.Transport) -> None:
    """Keep at most NOTSENT_LOWAT_BYTES unsent in the kernel for this socket, so a client
    that stops reading backs up into the transport, where SEND_BUFFER_BYTES_MAX holds.

    Without it Linux grows a socket's send buffer up to `tcp_wmem` (4 MiB here) and a
    stalled client can hold that much before the server sees any backlog.
    """
    sock = transport.get_extra_info("socket")
    if sock is not None and hasattr(socket, "TCP_NOTSENT_LOWAT"):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, NOTSENT_LOWAT_BYTES)


def reset(transport: asyncio.Transport) -> None:
    """Cut a connection with a reset: the kernel frees what it still queues for a client
    that does not read, at once, rather than probing its zero window for minutes."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


# A frame queued for a room: its seq, or None for one that has no number of its own.
Queued = tuple[int | None, bytes]


class Sender:
    """Writes to one socket within the bound: a write that would leave more than
    SEND_BUFFER_BYTES_MAX unsent drops the socket instead (`drop`). A socket with
    nothing unsent takes any one write (a long replay to a resuming client)."""

    def __init__(self, drop: Callable[[Client], None]) -> None:
        self._drop = drop

    def send(self, client: Client, data: bytes) -> None:
        transport = client.transport
        if transport.is_closing():
            return
        unsent = transport.get_write_buffer_size()
        if unsent and unsent + len(data) > SEND_BUFFER_BYTES_MAX:
            self._drop(client)
            return
        transport.write(data)

    def finish(self, unfinished: Iterable[Unfinished[Client]]) -> None:
        """Complete what SendPool left: a partial write has to be completed (the socket
        is mid-frame); one not begun goes through the bound."""
        for client, data, written in unfinished:
            if written:
                client.transport.write(data[written:])
            else:
                self.send(client, data)


class ShowFanout:
    """The frames queued for one show's rooms and the task that writes them."""

    def __init__(self, rooms: dict[BranchId, set[Client]], pool: SendPool, sender: Sender) -> None:
        self._rooms = rooms
        self._pool = pool
        self._sender = sender
        self._queued: dict[BranchId, list[Queued]] = {}
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run())
        self.passes = 0  # for tests and benchmarks: passes made, socket writes in them
        self.writes = 0

    def queue(self, branch: BranchId, seq: int | None, frame: bytes) -> None:
        self._queued.setdefault(branch, []).append((seq, frame))
        self._wake.set()

    def stop(self) -> None:
        self._task.cancel()

    def stopped(self) -> bool:
        return self._task.done()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            queued, self._queued = self._queued, {}
            try:
                await self._pass(queued)
            except Exception:  # a socket's trouble must not stop the show's frames
                logger.exception("fan-out pass failed")

    async def _pass(self, queued: dict[BranchId, list[Queued]]) -> None:
        self.passes += 1
        # Every room's sockets as they are now; one joined write each, in slices that
        # may span rooms (one hand-over to SendPool's helpers per slice).
        rooms = [(list(self._rooms.get(branch, ())), frames) for branch, frames in queued.items()]
        targets: list[Client] = []
        data: list[bytes] = []
        for clients, frames in rooms:
            numbered = [seq for seq, _ in frames if seq is not None]
            first = numbered[0] if numbered else HOLDING
            last = numbered[-1] if numbered else -1
            joined = b"".join(frame for _, frame in frames)
            for client in clients:
                if client.seq < first:
                    targets.append(client)
                    data.append(joined)
                    if last > client.seq:
                        client.seq = last
                    if len(targets) == SLICE_SOCKETS:
                        self._write(targets, data)
                        targets, data = [], []
                        await asyncio.sleep(0)  # let requests and heartbeats in
                else:
                    self._catch_up(client, frames, last)
        if targets:
            self._write(targets, data)

    def _write(self, targets: list[Client], data: list[bytes]) -> None:
        self._sender.finish(self._pool.write(targets, data))
        self.writes += len(targets)

    def _catch_up(self, client: Client, frames: list[Queued], last: int) -> None:
        """A socket that is held, gone, or already has some of these frames."""
        if client.held is not None:
            client.held.extend((seq, frame) for seq, frame in frames if seq is not None)
            return
        if client.seq == HOLDING:
            return  # it left the room after this pass began
        fresh = [frame for seq, frame in frames if seq is None or seq > client.seq]
        if fresh:
            self._sender.send(client, b"".join(fresh))
            self.writes += 1
        client.seq = max(client.seq, last)
