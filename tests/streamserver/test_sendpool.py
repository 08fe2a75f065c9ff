"""SendPool on real loopback sockets: the same bytes to many sockets from several threads.

The server ends are asyncio's own socket transports (what aiohttp hands the hub); the
client ends are plain sockets that read what arrived. What must hold: every socket gets
the bytes exactly once and whole, helper threads really share the work, and a socket
the helpers must not touch (bytes already queued in its transport, closing, full
kernel buffer) comes back to be finished through its transport, in order.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from streamserver.realtime import sendpool
from streamserver.realtime.sendpool import SHARE_SOCKETS_MIN, SendPool, socket_fd

DEADLINE_S = 5.0


@dataclass(eq=False)
class Target:
    transport: asyncio.Transport
    fd: int


class Accepting(asyncio.Protocol):
    def __init__(self, accepted: asyncio.Queue[asyncio.Transport]) -> None:
        self._accepted = accepted

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._accepted.put_nowait(transport)


@dataclass
class Pairs:
    """Loopback connections: server-side transports and the client sockets."""

    targets: list[Target]
    clients: list[socket.socket]

    async def read(self, i: int, size: int) -> bytes:
        loop = asyncio.get_running_loop()
        data = b""
        async with asyncio.timeout(DEADLINE_S):
            while len(data) < size:
                chunk = await loop.sock_recv(self.clients[i], size - len(data))
                assert chunk, f"socket {i} closed after {len(data)} bytes"
                data += chunk
        return data

    def nothing_more(self, i: int) -> bool:
        try:
            return self.clients[i].recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return True


async def open_pairs(n: int, rcvbuf: dict[int, int] | None = None) -> tuple[Pairs, asyncio.Server]:
    loop = asyncio.get_running_loop()
    accepted: asyncio.Queue[asyncio.Transport] = asyncio.Queue()
    server = await loop.create_server(lambda: Accepting(accepted), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    targets, clients = [], []
    for i in range(n):
        client = socket.socket()
        if rcvbuf and i in rcvbuf:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf[i])
        client.setblocking(False)
        async with asyncio.timeout(DEADLINE_S):
            await loop.sock_connect(client, ("127.0.0.1", port))
            transport = await accepted.get()
        clients.append(client)
        targets.append(Target(transport, socket_fd(transport)))
    return Pairs(targets, clients), server


@pytest.fixture
async def pool() -> AsyncIterator[SendPool]:
    made = SendPool(helpers=2)
    yield made
    made.close()


async def close_pairs(pairs: Pairs, server: asyncio.Server) -> None:
    for target in pairs.targets:
        target.transport.abort()
    for client in pairs.clients:
        client.close()
    server.close()
    await server.wait_closed()


async def test_every_socket_gets_the_bytes_once_and_helper_threads_share_the_work(
    pool: SendPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 3 * SHARE_SOCKETS_MIN
    pairs, server = await open_pairs(n)
    try:
        threads: set[int] = set()
        real = sendpool.write_share

        def recording(
            targets: list[Target], data: list[bytes]
        ) -> list[sendpool.Unfinished[Target]]:
            threads.add(threading.get_ident())
            return real(targets, data)

        monkeypatch.setattr(sendpool, "write_share", recording)
        rooms = [b"\x82\x05hello" * 40, b"\x82\x03abc" * 7]  # each socket its room's bytes
        assert pool.write(pairs.targets, [rooms[i % 2] for i in range(n)]) == []
        assert len(threads) == 3  # the loop thread and both helpers, a share each
        assert threading.get_ident() in threads
        for i in range(n):
            data = rooms[i % 2]
            assert await pairs.read(i, len(data)) == data
            assert pairs.nothing_more(i)
    finally:
        await close_pairs(pairs, server)


async def test_a_socket_the_helpers_must_not_touch_is_handed_back_and_finished_in_order(
    pool: SendPool,
) -> None:
    """A closing transport, and one still holding bytes a full kernel buffer refused."""
    n = 2 * SHARE_SOCKETS_MIN
    closing, backlogged = 0, n - 1
    pairs, server = await open_pairs(n, rcvbuf={backlogged: 4096})
    try:
        pairs.targets[closing].transport.close()
        slow = pairs.targets[backlogged].transport
        filler = b"x" * 65536
        while slow.get_write_buffer_size() == 0:
            slow.write(filler)  # until the kernel takes no more and the transport queues
        backlog = slow.get_write_buffer_size()

        data = bytes(range(256)) * 8
        unfinished = pool.write(pairs.targets, [data] * n)
        handed_back = {pairs.targets.index(t): (d, written) for t, d, written in unfinished}
        assert handed_back == {closing: (data, 0), backlogged: (data, 0)}
        # Finished through the transport: after its backlog, never inside it.
        slow.write(data)
        assert slow.get_write_buffer_size() == backlog + len(data)
        received = b""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(DEADLINE_S):
            while not received.endswith(data):
                received += await loop.sock_recv(pairs.clients[backlogged], 1 << 16)
        assert set(received[: -len(data)]) == {ord("x")}
        for i in range(1, n - 1):
            assert await pairs.read(i, len(data)) == data
            assert pairs.nothing_more(i)
    finally:
        await close_pairs(pairs, server)


async def test_a_partial_write_is_handed_back_with_what_was_written(pool: SendPool) -> None:
    """A kernel buffer with room for part of the bytes: the rest must follow, not be lost
    and not be written again (the socket would be mid-frame)."""
    pairs, server = await open_pairs(1, rcvbuf={0: 4096})
    try:
        target = pairs.targets[0]
        data = bytes(range(256)) * 32768  # 8 MiB: more than the kernel takes at once (tcp_wmem)
        ((handed, handed_data, written),) = pool.write([target], [data])
        assert (handed, handed_data) == (target, data)
        assert 0 < written < len(data)
        target.transport.write(data[written:])
        assert await pairs.read(0, len(data)) == data
    finally:
        await close_pairs(pairs, server)
