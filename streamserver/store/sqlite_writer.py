"""The SQLite store's plans applied in a process of their own.

A purchase's plan is about ten SQL statements, and Python holds the GIL around each of
them: on a thread, applying plans and serving HTTP took turns on one core while the
machine's other core idled (BENCHMARKS.md, "Flash sale"). Here a batch of plans crosses
a pipe, pickled, to a child process that owns a write connection to the same file, and
the outcomes come back once committed.

The parent's end lives on the event loop: the store's write loop (store/sqlite.py) sends
a batch and its outcomes arrive through the loop's own poller. An earlier version sent
and received on a writer thread, and each batch paid two thread hops and a wait for the
GIL on top of the pipe. The write loop still orders every write, so commits happen in
the order it takes jobs (store/ordering_memory.py relies on it), and its own writes
(catalog, sessions, the memory's loads) run only when no batch is in the child.
"""

from __future__ import annotations

import asyncio
import collections
import copyreg
import dataclasses
import io
import logging
import pickle
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Any, Final, TypeVar

from commerce import catalog, events, ledger, orders
from commerce import plan as plan_module
from commerce.ids import MerchantId
from commerce.plan import Plan
from streamserver.store import port
from streamserver.store.sqlite_apply import Outcome, apply_batch

logger = logging.getLogger(__name__)

STOP_TIMEOUT_S: Final = 10.0
T = TypeVar("T")


def connect(path: Path | str, synchronous: str) -> sqlite3.Connection:
    """A connection with the settings every connection to the store's file uses."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def _rebuild(cls: type[T], values: tuple[Any, ...]) -> T:
    value = object.__new__(cls)
    for name, field_value in zip(cls.__slots__, values, strict=True):  # type: ignore[attr-defined]
        object.__setattr__(value, name, field_value)
    return value


def _by_slots(value: Any) -> tuple[Any, ...]:
    cls = type(value)
    return _rebuild, (cls, tuple([getattr(value, name) for name in cls.__slots__]))


def _picklable_by_slots(*modules: ModuleType) -> dict[type, Any]:
    """The core's values cross the pipe by their slots: their dataclass __getstate__ and
    __setstate__ look the fields up on every object, and a plan (about 15 of them) took
    ~21 us to pickle and ~19 us to unpickle; this way ~11 and ~12."""
    table: dict[type, Any] = dict(copyreg.dispatch_table)
    for module in modules:
        for cls in vars(module).values():
            if isinstance(cls, type) and dataclasses.is_dataclass(cls):
                names = tuple(f.name for f in dataclasses.fields(cls))
                if getattr(cls, "__slots__", None) == names:
                    table[cls] = _by_slots
    return table


_DISPATCH: Final = _picklable_by_slots(catalog, events, ledger, orders, plan_module, port)


def _dumps(value: Any) -> bytes:
    out = io.BytesIO()
    pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _DISPATCH
    pickler.dump(value)
    return out.getvalue()


class WriterLost(RuntimeError):
    """The child died while it held a batch: whether it was committed is unknown."""


class _Link(asyncio.Protocol):
    """The parent's side of the pipe: multiprocessing.connection's framing (a 4-byte
    big-endian length, or -1 and an 8-byte one), which the child reads and writes."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiting: collections.deque[tuple[int, asyncio.Future[list[Outcome]]]] = (
            collections.deque()
        )
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, data: bytes, count: int) -> asyncio.Future[list[Outcome]]:
        assert self.transport is not None
        future: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        if len(data) > 0x7FFFFFFF:
            self.transport.writelines([struct.pack("!iQ", -1, len(data)), data])
        else:
            self.transport.writelines([struct.pack("!i", len(data)), data])
        self.waiting.append((count, future))
        return future

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 4:
            (size,) = struct.unpack_from("!i", self.buffer)
            start = 4
            if size == -1:
                if len(self.buffer) < 12:
                    return
                (size,) = struct.unpack_from("!Q", self.buffer, 4)
                start = 12
            if len(self.buffer) < start + size:
                return
            frame = bytes(self.buffer[start : start + size])
            del self.buffer[: start + size]
            count, future = self.waiting.popleft()
            try:
                outcomes: list[Outcome] = pickle.loads(frame)  # noqa: S301 (our own child)
            except Exception as exc:  # an answer that does not unpickle: stop trusting it
                logger.error("the SQLite writer process answered garbage (%s)", exc)
                self.waiting.appendleft((count, future))
                assert self.transport is not None
                self.transport.abort()
                return
            future.set_result(outcomes)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiting:
            logger.error("lost the SQLite writer process (%s); the next write starts another", exc)
        while self.waiting:
            count, future = self.waiting.popleft()
            lost = WriterLost("the store lost its writer process during this write")
            future.set_result([(None, lost)] * count)


class PlanWriter:
    """The parent's end, on the event loop. Batches are answered in the order they were
    sent; several may be in flight (the child applies one while the next waits in the
    pipe). The child starts with the first batch, and again after it died."""

    def __init__(self, path: Path, synchronous: str) -> None:
        self._path = path
        self._synchronous = synchronous
        self._process: asyncio.subprocess.Process | None = None
        self._link: _Link | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def batches_in_flight(self) -> int:
        """Sent and not yet answered."""
        return 0 if self._link is None else len(self._link.waiting)

    async def send(self, plans: Sequence[tuple[MerchantId, Plan]]) -> asyncio.Future[list[Outcome]]:
        """Hand `plans` to the child. The future gets one outcome per plan once they are
        committed: WriterLost for each if the child dies first (committed or not is
        then unknown), the pickling error if the batch cannot cross."""
        try:
            data = _dumps(plans)
        except Exception as exc:  # a bug: this batch fails, the writer carries on
            failed: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
            failed.set_result([(None, exc)] * len(plans))
            return failed
        link = self._link
        if link is None or link.lost:
            link = await self._start()
        return link.send(data, len(plans))

    async def stop(self) -> None:
        if self._link is not None and self._link.transport is not None:
            self._link.transport.close()  # the child sees EOF and exits
        self._link = None
        await self._reap()

    async def _start(self) -> _Link:
        """A fresh interpreter running this module: not a fork of this process, whose
        threads and event loop it would copy mid-flight, and not multiprocessing, which
        would import the server's whole __main__ into the child."""
        await self._reap()  # the child that died, if any
        parent, child = socket.socketpair()
        with child:
            command = [sys.executable, "-m", __name__, str(child.fileno())]
            command += [str(self._path), self._synchronous]
            self._process = await asyncio.create_subprocess_exec(
                *command, pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL
            )
        loop = asyncio.get_running_loop()
        _, self._link = await loop.connect_accepted_socket(_Link, parent)
        return self._link

    async def _reap(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()


def _serve(pipe: Connection, path: str, synchronous: str) -> None:
    """The child: apply each batch as it arrives, answer once committed, stop at EOF
    (the store closed, or its process died)."""
    # Ctrl-C reaches the whole process group: the server shuts down gracefully and
    # closes the pipe when it is done writing, which is when this process ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    db = connect(path, synchronous)
    try:
        while True:
            try:
                plans = pickle.loads(pipe.recv_bytes())  # noqa: S301 (our parent)
            except EOFError:
                return
            pipe.send_bytes(_pickled(apply_batch(db, plans)))
    finally:
        db.close()


def _pickled(outcomes: list[Outcome]) -> bytes:
    try:
        return _dumps(outcomes)
    except Exception:  # an error that does not pickle: its text still tells what happened
        plain: list[Outcome] = [
            (result, None if error is None else RuntimeError(repr(error)))
            for result, error in outcomes
        ]
        return _dumps(plain)


if __name__ == "__main__":
    # Run the module's own copy, not this __main__ one: what it pickles names functions
    # of streamserver.store.sqlite_writer, which the store can find.
    from streamserver.store.sqlite_writer import _serve as serve

    fd, db_path, sync = sys.argv[1:]
    serve(Connection(int(fd)), db_path, sync)
