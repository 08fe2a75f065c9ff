"""Load-generator processes for benchmarks/flashsale.py: purchases over raw HTTP/1.1.

Started by the benchmark, not by hand:

    python benchmarks/_load.py SPEC.json

The spec names the server, the purchase path and body, one bearer token per connection
(one shopper per connection), and the shape: closed loop (each connection sends its
next purchase as soon as the last one is answered) or open loop (`rate`: purchases are
due at fixed times, evenly staggered over the connections, and a purchase's latency is
counted from when it was due, so a slow server cannot hide queueing by slowing the
client down: no coordinated omission). `attempts` caps the purchases of this process
(the flash-sale shape); otherwise it runs for `seconds`.

Why not aiohttp's client: it spends about as much CPU per request as the server does,
and on 2 cores the load generator would starve the server. Here each connection is an
`asyncio.Protocol` that writes one pre-built request (only the Idempotency-Key
changes) and parses the status line, Content-Length and body; no pipelining, so a
connection has one purchase in flight, like a shopper's app.

Protocol with the parent: once every connection is open this prints `ready` on
stdout; the parent answers `go <monotonic start time>` on stdin (CLOCK_MONOTONIC is
one clock for every process). At the end the process writes SPEC.json's `out` (JSON)
and three arrays next to it: `.done` (float64: completion, monotonic s), `.lat`
(float64: latency s) and `.status` (uint16; 0 = no answer).
"""

from __future__ import annotations

import array
import asyncio
import collections
import contextlib
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

NO_ANSWER = 0


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with at most one request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is None:
            return
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = bytes(self.buf[:head_end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            length = 0
        else:
            end = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : end if end >= 0 else None])
        total = head_end + 4 + length
        if len(self.buf) < total:
            return
        status = int(self.buf[9:12])
        body = bytes(self.buf[head_end + 4 : total])
        del self.buf[:total]
        waiter, self.waiter = self.waiter, None
        if not waiter.done():
            waiter.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the server closed the connection"))

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        assert self.waiter is None
        if self.lost:
            raise ConnectionError("connection lost")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter


class Load:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.done = array.array("d")
        self.lat = array.array("d")
        self.status = array.array("H")
        self.errors: collections.Counter[str] = collections.Counter()
        self.accepted_per_conn = [0] * len(spec["tokens"])
        self.kept: collections.deque[tuple[int, str, bytes]] = collections.deque(
            maxlen=spec["keep_accepted"]
        )
        self.first: list[tuple[int, str, bytes]] = []  # the earliest accepted purchases
        self.attempts_left: int | None = spec.get("attempts")
        self.stop_at = float("inf")
        self.body = spec["body"].encode()
        self.prefix = spec["key_prefix"]

    def template(self, token: str) -> tuple[bytes, bytes]:
        """The request up to the Idempotency-Key value, and what follows it."""
        head = (
            f"POST {self.spec['path']} HTTP/1.1\r\n"
            f"Host: {self.spec['host']}:{self.spec['port']}\r\n"
            f"Authorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(self.body)}\r\n"
            "Idempotency-Key: "
        ).encode()
        return head, b"\r\n\r\n" + self.body

    def take(self) -> bool:
        if time.monotonic() >= self.stop_at:
            return False
        if self.attempts_left is None:
            return True
        if self.attempts_left <= 0:
            return False
        self.attempts_left -= 1
        return True

    def record(self, index: int, key: str, due: float, status: int, body: bytes) -> None:
        now = time.monotonic()
        self.done.append(now)
        self.lat.append(now - due)
        self.status.append(status)
        if status == 201:
            self.accepted_per_conn[index] += 1
            if self.kept.maxlen:
                self.kept.append((index, key, body))
            if len(self.first) < self.spec.get("keep_first", 0):
                self.first.append((index, key, body))
        else:
            try:
                reason = str(json.loads(body).get("error", status))
            except ValueError:
                reason = f"http_{status}"
            self.errors[reason] += 1

    async def shopper(self, index: int, conn: Connection, start: float, interval: float) -> None:
        head, tail = self.template(self.spec["tokens"][index])
        rate = self.spec.get("rate") or 0
        n = 0
        due = start + (index * interval / len(self.accepted_per_conn) if rate else 0.0)
        while True:
            if rate:
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            if not self.take():
                return
            key = f"{self.prefix}-{index}-{n}"
            n += 1
            sent = time.monotonic()
            if not rate:
                due = sent
            try:
                status, body = await conn.request(head + key.encode() + tail)
            except ConnectionError:
                self.record(index, key, due, NO_ANSWER, b"")
                return
            self.record(index, key, due, status, body)
            if rate:
                due += interval

    async def run(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        spec = self.spec
        conns: list[Connection] = []
        for _ in spec["tokens"]:
            _, conn = await loop.create_connection(Connection, spec["host"], spec["port"])
            conns.append(conn)
        print("ready", flush=True)
        line = await loop.run_in_executor(None, sys.stdin.readline)
        command, _, when = line.strip().partition(" ")
        assert command == "go", line
        start = float(when)
        if spec.get("seconds"):
            self.stop_at = start + float(spec["seconds"])
        # Open loop: each connection is due every `interval` seconds, so this process
        # offers `rate` purchases per second in total.
        rate = spec.get("rate") or 0
        interval = len(conns) / rate if rate else 0.0
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        cpu_at_start = time.process_time()
        tasks = [
            asyncio.create_task(self.shopper(i, c, start, interval)) for i, c in enumerate(conns)
        ]
        grace = float(spec.get("grace_s", 15))
        if spec.get("seconds"):
            await asyncio.wait(tasks, timeout=float(spec["seconds"]) + grace)
        else:
            await asyncio.wait(tasks)
        cpu_s = time.process_time() - cpu_at_start
        unanswered = 0
        for i, task in enumerate(tasks):
            if not task.done():
                task.cancel()
                unanswered += 1
                self.record(i, "", time.monotonic(), NO_ANSWER, b"")
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await task
        for conn in conns:
            if conn.transport is not None:
                conn.transport.close()
        return {
            "requests": len(self.status),
            "unanswered": unanswered,
            "cpu_s": cpu_s,  # this process's CPU from the start to the last answer
            "errors": dict(self.errors),
            "accepted_per_conn": self.accepted_per_conn,
            "kept": [
                {"conn": i, "key": key, "order": json.loads(body)} for i, key, body in self.kept
            ],
            "first": [
                {"conn": i, "key": key, "order": json.loads(body)} for i, key, body in self.first
            ],
        }


def main() -> None:
    spec_path = Path(sys.argv[1])
    spec = json.loads(spec_path.read_text())
    load = Load(spec)
    result = asyncio.run(load.run())
    out = Path(spec["out"])
    for suffix, values in ((".done", load.done), (".lat", load.lat), (".status", load.status)):
        with out.with_suffix(suffix).open("wb") as f:
            values.tofile(f)
    out.write_text(json.dumps(result))
    print("done", flush=True)


if __name__ == "__main__":
    main()
