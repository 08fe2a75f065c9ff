"""Websocket client processes for benchmarks/fanout.py: thousands of cheap shoppers.

Started by the benchmark, not by hand:

    python benchmarks/_sockets.py SPEC.json

The spec names the server(s) and one path per socket. Each socket is a raw non-blocking
TCP socket on one epoll: a hand-written RFC 6455 handshake, the `hello` frame
(msgpack `{"v": 1, "type": "hello", "data": {"last_seq": nil}}`), and a frame parser
that decodes server frames with msgpack and answers pings: a few µs of client CPU per
frame, so one process holds 10,000 sockets and the server stays the bottleneck.

Receive times are the kernel's: every socket has SO_TIMESTAMPNS on, so each
`recvmsg` returns the CLOCK_REALTIME time its last segment reached the socket
(stamped on arrival, not when this process reads it). A card frame is recorded as
(socket, seq, stamp, length, flags). Flag COALESCED: the frame was not the last one
in its read, so the stamp is that of a later segment (an upper bound: a stamp is never
early; the same holds when TCP merged a later segment into the frame's own buffer).

Commands are JSON lines on stdin, one JSON answer line each on stdout:

    connect                 open every socket of the spec, handshake, wait for snapshots
    read / pause            keep reading as frames arrive / drain, then stop reading
    mark {record}           forget the card frames recorded so far; record the next
                            ones (or only count them)
    record {on}             start or stop recording, keeping the counts
    collect {target, cards, timeout, out}
                            read until every open socket to that server has `cards`
                            card frames since the mark (or the timeout), write the
                            records to `out`
    stall {target, path, rcvbuf, mss}
                            one more socket with a tiny SO_RCVBUF (and TCP_MAXSEG) that
                            never reads after its handshake
    stall_status / unstall  its TCP state and receive queue / reset it (RST)
    quit

Records file: int64 count, then `count` int32 socket ids, int64 seqs, int64 stamps
(ns), int32 frame lengths, int8 flags.
"""

from __future__ import annotations

import array
import base64
import contextlib
import errno
import fcntl
import json
import os
import resource
import select
import socket
import struct
import sys
import time
from typing import Any

import msgpack

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
ANCILLARY = socket.CMSG_SPACE(16)
SIOCINQ = 0x541B
TCP_CLOSE = 7
COALESCED = 1
CARD_TYPES = frozenset({"card.shown", "card.updated"})
HELLO_PAYLOAD = msgpack.packb({"v": 1, "type": "hello", "data": {"last_seq": None}})
RECV_BYTES = 65536
CONNECTING_MAX = 64  # the server listens with a backlog of 128


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A client frame (RFC 6455 §5.3): masked, here with the all-zero key (XOR no-op)."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    else:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    return header + b"\0\0\0\0" + payload


HELLO_FRAME = masked_frame(0x2, HELLO_PAYLOAD)
HEARTBEAT_FRAME = masked_frame(0x2, msgpack.packb({"v": 1, "type": "heartbeat", "data": {}}))
HEARTBEAT_S = 5.0

# Socket states
CONNECTING, UPGRADING, JOINING, OPEN, CLOSED = range(5)


class Conn:
    __slots__ = ("buf", "cards", "id", "path", "sock", "state", "target")

    def __init__(self, sid: int, target: int, path: str) -> None:
        self.id = sid
        self.target = target
        self.path = path
        self.sock: socket.socket | None = None
        self.state = CONNECTING
        self.buf = bytearray()
        self.cards = 0  # card frames since the mark


class Client:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.targets: list[tuple[str, int]] = [(t["host"], t["port"]) for t in spec["targets"]]
        self.conns = [Conn(sid, target, path) for sid, target, path in spec["sockets"]]
        self.by_fd: dict[int, Conn] = {}
        self.epoll = select.epoll()  # the sockets and stdin
        self.control = select.epoll()  # stdin only: what a paused client waits on
        self.stdin = sys.stdin.buffer.raw  # type: ignore[attr-defined]
        os.set_blocking(self.stdin.fileno(), False)
        self.epoll.register(self.stdin.fileno(), select.EPOLLIN)
        self.control.register(self.stdin.fileno(), select.EPOLLIN)
        self.stdin_buf = b""
        self.reading = True
        self.recording = True
        self.rec_sock = array.array("i")
        self.rec_seq = array.array("q")
        self.rec_stamp = array.array("q")
        self.rec_len = array.array("i")
        self.rec_flag = array.array("b")
        self.pongs = 0
        self.closed_by_server = 0
        self.stalled: socket.socket | None = None
        self.stalled_heartbeat = 0.0

    # -- sockets ------------------------------------------------------------------------

    def _open(self, conn: Conn) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        # Closing sends a reset: thousands of sockets leave no TIME_WAIT behind.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        err = sock.connect_ex(self.targets[conn.target])
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, os.strerror(err))
        conn.sock = sock
        conn.state = CONNECTING
        self.by_fd[sock.fileno()] = conn
        self.epoll.register(sock.fileno(), select.EPOLLOUT)

    def _upgrade_request(self, conn: Conn) -> bytes:
        host, port = self.targets[conn.target]
        key = base64.b64encode(os.urandom(16)).decode()
        return (
            f"GET {conn.path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()

    def _close(self, conn: Conn) -> None:
        if conn.sock is not None:
            with contextlib.suppress(OSError):
                self.epoll.unregister(conn.sock.fileno())
            self.by_fd.pop(conn.sock.fileno(), None)
            conn.sock.close()
            conn.sock = None
        conn.state = CLOSED

    def connect(self, timeout: float) -> dict[str, Any]:
        started = time.monotonic()
        pending = list(reversed(self.conns))
        in_progress = 0
        failed = 0
        deadline = started + timeout
        while time.monotonic() < deadline:
            while pending and in_progress < CONNECTING_MAX:
                self._open(pending.pop())
                in_progress += 1
            if not in_progress and not pending:
                break
            for fd, events in self.epoll.poll(0.5):
                conn = self.by_fd.get(fd)
                if conn is None:
                    continue  # stdin: commands wait until the sockets are open
                before = conn.state
                self._on_event(conn, events)
                if before != OPEN and conn.state in (OPEN, CLOSED):
                    in_progress -= 1
                    failed += conn.state == CLOSED
        opened = sum(c.state == OPEN for c in self.conns)
        closed = [sum(c.state != OPEN and c.target == t for c in self.conns) for t in range(2)]
        return {
            "opened": opened,
            "failed": failed,
            "not_open_per_target": closed,
            "seconds": time.monotonic() - started,
        }

    def _on_event(self, conn: Conn, events: int) -> None:
        sock = conn.sock
        assert sock is not None
        if conn.state == CONNECTING:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self._close(conn)
                return
            sock.send(self._upgrade_request(conn))
            conn.state = UPGRADING
            self.epoll.modify(sock.fileno(), select.EPOLLIN)
            return
        self._receive(conn)

    def _receive(self, conn: Conn) -> None:
        sock = conn.sock
        while sock is not None:
            try:
                data, ancillary, _, _ = sock.recvmsg(RECV_BYTES, ANCILLARY)
            except BlockingIOError:
                return
            except OSError:
                self.closed_by_server += conn.state == OPEN
                self._close(conn)
                return
            if not data:
                self.closed_by_server += conn.state == OPEN
                self._close(conn)
                return
            stamp = 0
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", value[:16])
                    stamp = sec * 1_000_000_000 + nsec
            conn.buf += data
            self._frames(conn, stamp)
            sock = conn.sock
            if len(data) < RECV_BYTES:
                return  # level-triggered epoll calls again if more arrived meanwhile

    def _frames(self, conn: Conn, stamp: int) -> None:
        buf = conn.buf
        if conn.state == UPGRADING:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self._close(conn)
                return
            del buf[: end + 4]
            assert conn.sock is not None
            conn.sock.send(HELLO_FRAME)
            conn.state = JOINING
        while len(buf) >= 2:
            opcode = buf[0] & 0x0F
            n = buf[1] & 0x7F
            offset = 2
            if n == 126:
                if len(buf) < 4:
                    return
                n = (buf[2] << 8) | buf[3]
                offset = 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n = int.from_bytes(buf[2:10], "big")
                offset = 10
            end = offset + n
            if len(buf) < end:
                return
            payload = bytes(buf[offset:end])
            del buf[:end]
            if opcode == 0x2:
                self._message(conn, payload, stamp, end, 0 if not buf else COALESCED)
            elif opcode == 0x9 and conn.sock is not None:
                with contextlib.suppress(OSError):
                    conn.sock.send(masked_frame(0xA, payload))
                self.pongs += 1
            elif opcode == 0x8:
                self.closed_by_server += conn.state == OPEN
                self._close(conn)
                return

    def _message(self, conn: Conn, payload: bytes, stamp: int, length: int, flags: int) -> None:
        message = msgpack.unpackb(payload)
        kind = message.get("type")
        if kind in CARD_TYPES:
            conn.cards += 1
            if not self.recording:
                return
            self.rec_sock.append(conn.id)
            self.rec_seq.append(message["seq"])
            self.rec_stamp.append(stamp)
            self.rec_len.append(length)
            self.rec_flag.append(flags)
        elif kind == "snapshot" and conn.state == JOINING:
            conn.state = OPEN

    def poll_sockets(self, timeout: float) -> bool:
        """One round of reading; True when stdin has a command waiting."""
        command = False
        stdin = self.stdin.fileno()
        for fd, events in self.epoll.poll(timeout):
            if fd == stdin:
                command = True
                continue
            conn = self.by_fd.get(fd)
            if conn is not None:
                self._on_event(conn, events)
        return command

    def drain(self) -> None:
        while True:
            ready = [fd for fd, _ in self.epoll.poll(0) if fd != self.stdin.fileno()]
            if not ready:
                return
            for fd in ready:
                conn = self.by_fd.get(fd)
                if conn is not None:
                    self._on_event(conn, 0)

    # -- commands -----------------------------------------------------------------------

    def mark(self, record: bool) -> None:
        self.recording = record
        for conn in self.conns:
            conn.cards = 0
        for records in (self.rec_sock, self.rec_seq, self.rec_stamp, self.rec_len):
            del records[:]
        del self.rec_flag[:]

    def collect(self, target: int, cards: int, timeout: float, out: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        conns = [c for c in self.conns if c.target == target]
        while True:
            waiting = sum(c.state == OPEN and c.cards < cards for c in conns)
            if not waiting or time.monotonic() > deadline:
                break
            self.poll_sockets(0.02)
        count = len(self.rec_seq)
        with open(out, "wb") as f:
            f.write(struct.pack("q", count))
            for records in (self.rec_sock, self.rec_seq, self.rec_stamp, self.rec_len):
                records.tofile(f)
            self.rec_flag.tofile(f)
        return {
            "records": count,
            "waiting": waiting,
            "open": sum(c.state == OPEN for c in conns),
            "closed_by_server": self.closed_by_server,
            "pongs": self.pongs,
            "cpu_s": time.process_time(),
        }

    def stall(self, target: int, path: str, rcvbuf: int, mss: int) -> dict[str, Any]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect
        if mss:
            # Announce an Ethernet-sized MSS: over loopback (MSS 65483) the server's kernel
            # would size its send buffer for 64 KB segments (megabytes for one socket).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.settimeout(10)
        sock.connect(self.targets[target])
        conn = Conn(-1, target, path)
        sock.sendall(self._upgrade_request(conn))
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = sock.recv(1)  # byte by byte: leave every frame unread
            if not chunk:
                raise ConnectionError("closed during the handshake")
            response += chunk
        if not response.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(response.decode(errors="replace"))
        sock.sendall(HELLO_FRAME)
        self.stalled = sock
        self.stalled_heartbeat = time.monotonic()
        return {
            "local_port": sock.getsockname()[1],
            "rcvbuf": sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
        }

    def stall_status(self) -> dict[str, Any]:
        sock = self.stalled
        if sock is None:
            return {"open": False}
        state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
        queued = struct.unpack("i", fcntl.ioctl(sock.fileno(), SIOCINQ, b"\0\0\0\0"))[0]
        if state != TCP_CLOSE and time.monotonic() - self.stalled_heartbeat > HEARTBEAT_S:
            # Sending (never reading) keeps aiohttp's 30 s heartbeat from cutting it.
            with contextlib.suppress(OSError):
                sock.send(HEARTBEAT_FRAME)
            self.stalled_heartbeat = time.monotonic()
        return {"open": state != TCP_CLOSE, "tcp_state": state, "rcvq": queued}

    def unstall(self) -> dict[str, Any]:
        status = self.stall_status()
        if self.stalled is not None:
            self.stalled.close()  # SO_LINGER 0: a reset
            self.stalled = None
        return status

    def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        name = command["cmd"]
        if name == "connect":
            return self.connect(command.get("timeout", 300.0))
        if name == "read":
            self.reading = True
            return {}
        if name == "pause":
            self.drain()
            self.reading = False
            return {}
        if name == "mark":
            self.mark(command.get("record", True))
            return {}
        if name == "record":
            self.recording = command["on"]
            return {}
        if name == "collect":
            return self.collect(
                command["target"], command["cards"], command["timeout"], command["out"]
            )
        if name == "stall":
            return self.stall(
                command["target"], command["path"], command["rcvbuf"], command.get("mss", 0)
            )
        if name == "stall_status":
            return self.stall_status()
        if name == "unstall":
            return self.unstall()
        raise ValueError(f"unknown command {name!r}")

    def commands(self) -> list[dict[str, Any]]:
        try:
            chunk = os.read(self.stdin.fileno(), 65536)
        except BlockingIOError:
            return []
        if not chunk:
            raise SystemExit(0)
        self.stdin_buf += chunk
        *lines, self.stdin_buf = self.stdin_buf.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]

    def run(self) -> None:
        while True:
            ready = self.poll_sockets(1.0) if self.reading else bool(self.control.poll(1.0))
            if not ready:
                continue
            for command in self.commands():
                if command["cmd"] == "quit":
                    return
                try:
                    answer = {"ok": True, **self.handle(command)}
                except Exception as exc:
                    answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                sys.stdout.write(json.dumps(answer) + "\n")
                sys.stdout.flush()


def main() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    Client(spec).run()


if __name__ == "__main__":
    main()
