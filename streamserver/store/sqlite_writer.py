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
from typing import Final

from commerce.ids import MerchantId
from commerce.plan import Plan
from streamserver.store.sqlite_apply import Outcome, apply_batch

logger = logging.getLogger(__name__)

STOP_TIMEOUT_S: Final = 10.0


def connect(path: Path | str, synchronous: str) -> sqlite3.Connection:
    """A connection with the settings every connection to the store's file uses."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


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
        self._sent: collections.deque[tuple[int, int]] = collections.deque()

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
        if self._pipe is None:
            self.start()
        assert self._pipe is not None
        self._sent.append((self._child, len(plans)))
        try:
            self._pipe.send_bytes(pickle.dumps(plans, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError as exc:
            self._lost(exc)

    def receive(self) -> list[Outcome]:
        """The outcomes of the oldest batch sent, once committed."""
        child, count = self._sent.popleft()
        if child == self._child and self._pipe is not None:
            try:
                return pickle.loads(self._pipe.recv_bytes())  # type: ignore[no-any-return]  # noqa: S301 (our child)
            except (EOFError, OSError) as exc:
                self._lost(exc)
        lost = WriterLost("the store's writer process died during this write")
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
        logger.error("the SQLite writer process died (%s); the next write starts another", exc)
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
        return pickle.dumps(outcomes, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # an error that does not pickle: its text still tells what happened
        plain: list[Outcome] = [
            (result, None if error is None else RuntimeError(repr(error)))
            for result, error in outcomes
        ]
        return pickle.dumps(plain, protocol=pickle.HIGHEST_PROTOCOL)


if __name__ == "__main__":
    fd, db_path, sync = sys.argv[1:]
    _serve(Connection(int(fd)), db_path, sync)
