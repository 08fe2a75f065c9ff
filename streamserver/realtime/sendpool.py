"""Writing the same bytes to many sockets, the kernel's share of it spread over the cores.

Nearly all of a fan-out's time is the kernel's `send()` (about 8-10 µs a socket on
loopback here, issue #8), and `send()` releases the GIL: so while the event loop's
thread writes one share of the sockets, helper threads write the others, and the loop
thread waits until every share is done. That wait is what makes it safe: nothing else
on the loop (aiohttp's pings and close frames, a transport flushing its buffer) can
write to these sockets meanwhile, so the frames of two writers never interleave.

A helper writes with `os.write` only to a socket whose transport has nothing queued
and is not closing: the same thing the transport's own `write()` does first. Whatever
it could not write whole goes back to the caller, which finishes it on the loop thread
through the transport (queueing the rest, or letting asyncio report the error).
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from collections.abc import Sequence
from typing import Any, Final, Protocol, TypeVar

# Below this many sockets a helper's wake-up costs more than its share saves.
SHARE_SOCKETS_MIN: Final = 256
HELPERS_MAX: Final = 4


class Target(Protocol):
    """A socket to write to: its transport, and its descriptor (-1: transport only)."""

    @property
    def transport(self) -> asyncio.Transport: ...

    @property
    def fd(self) -> int: ...


T = TypeVar("T", bound=Target)


def socket_fd(transport: asyncio.Transport) -> int:
    """The descriptor a helper may write to directly, or -1 (TLS: only the transport
    knows what bytes go on the wire)."""
    if transport.get_extra_info("sslcontext") is not None:
        return -1
    sock = transport.get_extra_info("socket")
    return -1 if sock is None else int(sock.fileno())


# A target not written whole: the bytes meant for it and how many of them went out.
Unfinished = tuple[T, bytes, int]


def write_share(targets: Sequence[T], data: Sequence[bytes]) -> list[Unfinished[T]]:
    """Write `data[i]` to `targets[i]`'s socket; what was not written whole, to be
    finished through its transport on the loop thread."""
    unfinished: list[Unfinished[T]] = []
    write = os.write
    for target, payload in zip(targets, data, strict=True):
        transport = target.transport
        fd = target.fd
        if fd < 0 or transport.get_write_buffer_size() or transport.is_closing():
            unfinished.append((target, payload, 0))
            continue
        try:
            written = write(fd, payload)
        except OSError:  # full (EAGAIN), or broken: the transport meets it again its way
            written = 0
        if written != len(payload):
            unfinished.append((target, payload, written))
    return unfinished


# What a helper is given (a share of the targets and their bytes, where to answer) and
# what it answers (what it could not finish, or what went wrong).
_Answer = list[Unfinished[Any]] | BaseException
_Job = tuple[Sequence[Any], Sequence[bytes], "queue.SimpleQueue[_Answer]"]


class SendPool:
    """Helper threads for `write_share`, one share each; owned by the hub, closed with it."""

    def __init__(self, helpers: int | None = None) -> None:
        if helpers is None:
            # One per core, so with the loop thread one thread more than cores: while
            # one waits to take the GIL back after its send(), the cores stay busy
            # (issue #8, 10,000 sockets on 2 cores: p99 75 ms against 88 with one helper).
            helpers = min(HELPERS_MAX, os.cpu_count() or 1)
        self.helpers = max(0, helpers)
        self._jobs: list[queue.SimpleQueue[_Job | None]] = []
        self._threads: list[threading.Thread] = []
        for i in range(self.helpers):
            jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
            thread = threading.Thread(
                target=_help, args=(jobs,), name=f"lianbo-send-{i}", daemon=True
            )
            thread.start()
            self._jobs.append(jobs)
            self._threads.append(thread)
        self._done: queue.SimpleQueue[_Answer] = queue.SimpleQueue()

    def write(self, targets: Sequence[T], data: Sequence[bytes]) -> list[Unfinished[T]]:
        """Write `data[i]` to `targets[i]` (the same few bytes objects over and over);
        blocks the calling (loop) thread until done. Returns what `write_share` returns,
        for the caller to finish."""
        shares = 1 + min(self.helpers, len(targets) // SHARE_SOCKETS_MIN)
        if shares == 1:
            return write_share(targets, data)
        size = -(-len(targets) // shares)
        for i in range(1, shares):
            share = slice(i * size, (i + 1) * size)
            self._jobs[i - 1].put((targets[share], data[share], self._done))
        unfinished = write_share(targets[:size], data[:size])
        failed: BaseException | None = None
        for _ in range(1, shares):  # every helper answers before the loop may go on
            answer = self._done.get()
            if isinstance(answer, BaseException):
                failed = answer
            else:
                unfinished += answer
        if failed is not None:
            raise failed
        return unfinished

    def close(self) -> None:
        for jobs in self._jobs:
            jobs.put(None)
        for thread in self._threads:
            thread.join()


def _help(jobs: queue.SimpleQueue[_Job | None]) -> None:
    while (job := jobs.get()) is not None:
        targets, data, done = job
        try:
            done.put(write_share(targets, data))
        except BaseException as exc:  # handed to the loop thread, which raises it
            done.put(exc)
