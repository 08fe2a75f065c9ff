"""The SQLite store's plans applied in a process of their own.

A purchase's plan is about ten SQL statements, and Python holds the GIL around each of
them: on a thread, applying plans and serving HTTP took turns on one core while the
machine's other core idled (BENCHMARKS.md, "Flash sale"). Here a batch of plans crosses
a pipe, pickled, to a child process that owns a write connection to the same file, and
the outcomes come back once committed.

The store's writer thread still orders every write: it hands a batch to the child and
waits for the outcomes before it takes the next job. So commits happen in the order the
thread takes jobs (store/ordering_memory.py relies on it), and the thread's own writes
(catalog, sessions, the memory's loads) never wait on the child for SQLite's lock.
"""

from __future__ import annotations

import collections
import copyreg
import dataclasses
import io
import logging
import pickle
import signal
import socket
import sqlite3
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


class PlanWriter:
    """The parent's end, used from the store's writer thread (its calls block).

    Batches are answered in the order they were sent. Several may be in flight: the
    child applies one while the next is pickled and waits in the pipe.
    """

    def __init__(self, path: Path, synchronous: str) -> None:
        self._path = path
        self._synchronous = synchronous
        self._process: subprocess.Popen[bytes] | None = None
        self._pipe: Connection | None = None
        self._child = 0  # which child a batch went to: one that died answers nothing
        # Per batch sent, in order: its child, its size, and why it could not be sent.
        self._sent: collections.deque[tuple[int, int, Exception | None]] = collections.deque()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        """A fresh interpreter running this module: not a fork of this process, whose
        threads and event loop it would copy mid-flight, and not multiprocessing, which
        would import the server's whole __main__ into the child."""
        parent, child = socket.socketpair()
        with child:
            command = [sys.executable, "-m", __name__, str(child.fileno())]
            command += [str(self._path), self._synchronous]
            self._process = subprocess.Popen(  # noqa: S603 (this interpreter, this module)
                command, pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL
            )
        self._pipe = Connection(parent.detach())
        self._child += 1

    def send(self, plans: Sequence[tuple[MerchantId, Plan]]) -> None:
        try:
            data = _dumps(plans)
        except Exception as exc:  # a bug: the batch fails, the writer carries on
            self._sent.append((self._child, len(plans), exc))
            return
        if self._pipe is None:
            self.start()
        assert self._pipe is not None
        self._sent.append((self._child, len(plans), None))
        try:
            self._pipe.send_bytes(data)
        except OSError as exc:
            self._lost(exc)

    def receive(self) -> list[Outcome]:
        """The outcomes of the oldest batch sent, once committed."""
        child, count, unsent = self._sent.popleft()
        if unsent is not None:
            return [(None, unsent) for _ in range(count)]
        if child == self._child and self._pipe is not None:
            try:
                outcomes: list[Outcome] = pickle.loads(self._pipe.recv_bytes())  # noqa: S301
                return outcomes  # unpickled from our own child
            except Exception as exc:  # EOF, a reset, or an answer that does not unpickle
                self._lost(exc)
        lost = WriterLost("the store lost its writer process during this write")
        return [(None, lost) for _ in range(count)]

    def stop(self) -> None:
        if self._pipe is not None:
            self._pipe.close()  # the child sees EOF and exits
            self._pipe = None
        if self._process is not None:
            try:
                self._process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def _lost(self, exc: BaseException) -> None:
        logger.error("lost the SQLite writer process (%s); the next write starts another", exc)
        self.stop()


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
