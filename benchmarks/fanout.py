"""Websocket fan-out benchmark: live cards to K shoppers' sockets, lianbo vs a naive loop.

    .venv/bin/python benchmarks/fanout.py --sockets 10000 [--rooms 20] [--json]

Every party has its own process, all on loopback:

- lianbo: `python -m streamserver.cli serve --host 127.0.0.1 --port 0 --data-dir <tmp>`,
  started with PYTHONPATH pointing at a generated `sitecustomize.py` that wraps
  `LocalBus.publish` (the embedded bus) to log `FANOUT-PUBLISH <seq> <start> <end>` on
  stderr: CLOCK_REALTIME just before the bus hands the event to the hub and just after
  (the hub applies it and queues its frames), and `ShowFanout._pass` to log
  `FANOUT-PASS <start> <end> <writes>` for each of the show's write passes (the hub
  writes off the publisher's request). Nothing else changes; the server, the store
  (SQLite) and the hub are the real ones.
- the naive baseline: benchmarks/naive_fanout.py, the same URLs and frames, broadcasting
  with `await ws.send_bytes(msgpack.packb(...))` per socket; it logs the same line.
- the shoppers: benchmarks/_sockets.py client processes (--client-procs, default 2),
  raw sockets with SO_TIMESTAMPNS. K sockets to each server, spread round-robin over
  the --rooms branch rooms; both servers are loaded at once and measured in turns,
  so drift on this shared VM hits both alike.

Seeding (over HTTP, as an operator would): a merchant with B branches, one product in
stock at every branch, a show, and a pinned card. Then the host PATCHes the card's
price (Bearer host token) and we measure, per card:

- delivery: per socket, the kernel receive stamp of the card's frame minus the
  server's publish start (the wrapped `publish`; for the naive server, the start of
  its loop). Reported p50/p99/max over the sockets (median over --repeats cards), with
  clients that pause reading while the card goes out (so they take no CPU from the
  server: they read only once the server has written it everywhere, for lianbo once
  a write pass begun after the publish has ended) and with clients that keep reading
  (all of it on the same 2 cores).
  `from_request_p99_ms` is measured from just before the host's PATCH is sent instead
  (adds HTTP parsing, auth and the store writes before the publish).
- burst: 10 PATCHes sent at once; messages/s = 10 * K / (last socket's stamp of its
  10th card - first publish start). Meanwhile, until the clients have all ten, another
  client GETs /api/health every 5 ms: `http_probe_max_ms` is how long the server's
  event loop kept it waiting.
- server CPU per socket: psutil user+system of the server process from before the
  PATCH until the clients have the card, over the paused single cards, minus the same
  PATCHes with no socket open, / K; psutil counts in 10 ms ticks, so also every
  thread's exact figure (/proc/PID/task/*/schedstat: lianbo's send helpers write too)
  and the psutil figure over the 30 fan-outs of the paused bursts. On loopback this
  includes the kernel's receive work for the client's socket, run inside the send().
- RSS per idle connection: (RSS with K idle sockets - RSS with none) / K, and the CPU
  the idle sockets cost (heartbeats) over --idle-seconds.
- a stalled client: one more socket that never reads after its handshake, with
  SO_RCVBUF at the kernel minimum and an Ethernet MSS (TCP_MAXSEG 1448; over
  loopback's 64 KB MSS the server's kernel would queue megabytes for it before the
  server saw any backlog). It sends a heartbeat every few seconds, so aiohttp's 30 s
  ping does not cut it. lianbo: delivery to the others with it in the room, then cards
  until the server drops it (its end of the connection leaves ESTABLISHED, per `ss`)
  and the unsent bytes that implies. Naive: cards until a PATCH never returns, how many
  others still wait for that card after --freeze-wait seconds, and how long until they
  get it once the stalled client is reset.

Each measurement first waits (up to --wait-quiet s) until work that is not this
benchmark's used under --quiet-cores of the machine; `other_cores` records what other
work used while it ran. Both servers' turns alternate, so drift hits both alike.

With --json the last line of output is one JSON object; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parent.parent
SOCKETS = ROOT / "benchmarks" / "_sockets.py"
NAIVE = ROOT / "benchmarks" / "naive_fanout.py"
LISTENING = re.compile(r"listening on (http://[^/\s]+)/")
PUBLISH = re.compile(r"FANOUT-PUBLISH (\d+) (\d+) (\d+) (\S+)")
PASS = re.compile(r"FANOUT-PASS (\d+) (\d+) (\d+)")
BURST = 10
STALL_RCVBUF = 1  # the kernel raises it to its minimum (about 2.3 KB)
TARGETS_MS = 100.0
KB = 1024

# Loaded into lianbo's interpreter through PYTHONPATH: times the embedded bus's publish.
PUBLISH_HOOK = """
import os, time
from streamserver.bus import local as _local

_publish = _local.LocalBus.publish

async def _timed_publish(self, show, event):
    start = time.time_ns()
    seq = await _publish(self, show, event)
    end = time.time_ns()
    os.write(2, f"FANOUT-PUBLISH {seq} {start} {end} {event.get('type')}\\n".encode())
    return seq

_local.LocalBus.publish = _timed_publish

# The hub writes off the publisher's request, in passes (streamserver/realtime/fanout.py).
from streamserver.realtime import fanout as _fanout

_pass = _fanout.ShowFanout._pass

async def _timed_pass(self, queued):
    start, writes = time.time_ns(), self.writes
    await _pass(self, queued)
    os.write(2, f"FANOUT-PASS {start} {time.time_ns()} {self.writes - writes}\\n".encode())

_fanout.ShowFanout._pass = _timed_pass
"""


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores)."""
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0) - getattr(t, "steal", 0))


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value))


def log(message: str) -> None:
    print(f"[fanout {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- processes --------------------------------------------------------------------------


@dataclass
class Server:
    """A server process: lianbo or the naive baseline."""

    name: str
    process: asyncio.subprocess.Process
    base: str
    port: int
    publishes: dict[int, tuple[int, int]] = field(default_factory=dict)
    passes: list[tuple[int, int, int]] = field(default_factory=list)  # start, end, writes
    order: list[int] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)
    draining: asyncio.Task[None] | None = None
    published: asyncio.Event = field(default_factory=asyncio.Event)
    # Filled in by seeding.
    show: str = ""
    card: str = ""
    branches: list[str] = field(default_factory=list)
    host_auth: dict[str, str] = field(default_factory=dict)

    @classmethod
    async def start(cls, name: str, args: list[str], env: dict[str, str]) -> Server:
        process = await asyncio.create_subprocess_exec(
            *args, cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
        )
        assert process.stderr is not None
        async with asyncio.timeout(60):
            while True:
                line = (await process.stderr.readline()).decode()
                if not line:
                    raise RuntimeError(f"{name} ended before listening")
                match = LISTENING.search(line)
                if match:
                    break
        base = match.group(1)
        server = cls(name, process, base, int(base.rsplit(":", 1)[1]))
        server.draining = asyncio.create_task(server._drain(process.stderr))
        return server

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            line = raw.decode(errors="replace")
            match = PUBLISH.match(line)
            if match:
                seq = int(match.group(1))
                self.publishes[seq] = (int(match.group(2)), int(match.group(3)))
                self.order.append(seq)
                self.published.set()
            elif match := PASS.match(line):
                start, end, writes = (int(g) for g in match.groups())
                self.passes.append((start, end, writes))
                self.published.set()
            else:
                self.tail = [*self.tail[-50:], line]

    async def written(self, seqs: list[int], limit_s: float = 30) -> None:
        """Until the server has written these publishes to every socket: lianbo in a
        write pass begun after the last of them (the naive loop within its publish)."""
        if self.name != "lianbo":
            return
        after = max(self.publishes[s][0] for s in seqs)
        async with asyncio.timeout(limit_s):
            while not any(start >= after for start, _, _ in self.passes):
                self.published.clear()
                await self.published.wait()

    async def published_since(self, index: int, count: int, limit_s: float = 30) -> list[int]:
        """The seqs of the next `count` publishes after `index` (waiting for their lines)."""
        async with asyncio.timeout(limit_s):
            while len(self.order) < index + count:
                self.published.clear()
                await self.published.wait()
        return self.order[index : index + count]

    @property
    def ps(self) -> psutil.Process:
        return psutil.Process(self.process.pid)

    def cpu_s(self) -> float:
        times = self.ps.cpu_times()
        return times.user + times.system

    def threads_cpu_ns(self) -> int:
        """CPU time of every thread, exactly (schedstat; psutil counts 10 ms ticks)."""
        pid = self.process.pid
        total = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        return total

    def written_ms(self, start_ns: int, end_ns: int) -> tuple[float, int]:
        """From `start_ns` to the end of the last write pass begun before `end_ns`, and
        how many passes that took; a server without passes writes inside its publish."""
        passes = [p for p in self.passes if start_ns <= p[0] < end_ns]
        if not passes:
            ends = [e for s, e in self.publishes.values() if start_ns <= s < end_ns]
            return ms(max(ends, default=start_ns) - start_ns), 0
        return ms(passes[-1][1] - start_ns), len(passes)

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                async with asyncio.timeout(20):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self.draining is not None:
            with contextlib.suppress(Exception):
                await self.draining


@dataclass
class ClientProc:
    process: asyncio.subprocess.Process
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    async def start(cls, spec: dict[str, Any], path: Path) -> ClientProc:
        write_json(path, spec)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SOCKETS),
            str(path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 20,
        )
        return cls(process)

    async def call(self, command: dict[str, Any], limit_s: float = 600) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        async with self.lock, asyncio.timeout(limit_s):
            self.process.stdin.write(json.dumps(command).encode() + b"\n")
            await self.process.stdin.drain()
            line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"client process ended (command {command['cmd']})")
        answer: dict[str, Any] = json.loads(line)
        if not answer.pop("ok"):
            raise RuntimeError(f"client: {command['cmd']}: {answer['error']}")
        return answer

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(Exception):
                assert self.process.stdin is not None
                self.process.stdin.write(b'{"cmd": "quit"}\n')
                await self.process.stdin.drain()
            try:
                async with asyncio.timeout(30):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


class Clients:
    """The client processes, commanded together."""

    def __init__(self, procs: list[ClientProc], work: Path) -> None:
        self.procs = procs
        self.work = work

    async def all(self, command: dict[str, Any]) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(p.call(command) for p in self.procs)))

    async def collect(
        self, target: int, cards: int, wait_s: float
    ) -> tuple[Records, list[dict[str, Any]]]:
        outs = [self.work / f"records-{i}.bin" for i in range(len(self.procs))]
        answers = await asyncio.gather(
            *(
                p.call(
                    {
                        "cmd": "collect",
                        "target": target,
                        "cards": cards,
                        "timeout": wait_s,
                        "out": str(out),
                    }
                )
                for p, out in zip(self.procs, outs, strict=True)
            )
        )
        records = Records()
        for out in outs:
            records.load(out)
        return records, list(answers)

    async def stop(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.procs))


class Records:
    """Card frames as the clients recorded them: socket, seq, kernel stamp, length, flags."""

    def __init__(self) -> None:
        self.sock = array.array("i")
        self.seq = array.array("q")
        self.stamp = array.array("q")
        self.length = array.array("i")
        self.flags = array.array("b")

    def load(self, path: Path) -> None:
        with open(path, "rb") as f:
            (count,) = struct.unpack("q", f.read(8))
            for records in (self.sock, self.seq, self.stamp, self.length, self.flags):
                records.fromfile(f, count)

    def by_seq(self, seqs: set[int]) -> dict[int, dict[int, tuple[int, int, int]]]:
        """seq -> socket -> (stamp, length, flags); a repeated frame keeps its first stamp."""
        out: dict[int, dict[int, tuple[int, int, int]]] = {s: {} for s in seqs}
        for sock, seq, stamp, length, flags in zip(
            self.sock, self.seq, self.stamp, self.length, self.flags, strict=True
        ):
            if seq in out and sock not in out[seq]:
                out[seq][sock] = (stamp, length, flags)
        return out


# -- statistics -------------------------------------------------------------------------


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest rank; the list is sorted and may end in inf (sockets that never got it)."""
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(ns: float) -> float:
    return ns / 1e6


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(b) else math.nan


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            return None
        return round(value, 3)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def delivery(
    frames: dict[int, tuple[int, int, int]], sockets: Sequence[int], origin_ns: int
) -> dict[str, Any]:
    times = sorted(ms(frames[s][0] - origin_ns) if s in frames else math.inf for s in sockets)
    return {
        "p50_ms": percentile(times, 50),
        "p99_ms": percentile(times, 99),
        "max_ms": times[-1] if times else math.nan,
        "first_ms": times[0] if times else math.nan,
        "missing": sum(math.isinf(t) for t in times),
        "coalesced": sum(1 for s in sockets if s in frames and frames[s][2]),
    }


def median_of(cards: list[dict[str, Any]], key: str) -> float:
    values = [c[key] for c in cards if c.get(key) is not None]
    return statistics.median(values) if values else math.nan


# -- seeding ----------------------------------------------------------------------------


async def ok(
    http: aiohttp.ClientSession,
    server: Server,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> Any:
    async with http.request(method, server.base + path, json=body, headers=headers) as r:
        payload = await r.json() if r.content_type == "application/json" else await r.text()
        if r.status not in (200, 201):
            raise RuntimeError(f"{method} {path}: {r.status} {payload}")
        return payload


async def seed_lianbo(http: aiohttp.ClientSession, server: Server, rooms: int) -> None:
    created = await ok(http, server, "POST", "/api/merchants", {"name": "Fanout Tea"})
    merchant = created["merchant"]["id"]
    op = {"Authorization": f"Bearer {created['operator_token']}"}
    m = f"/api/merchants/{merchant}"
    for i in range(rooms):
        branch = await ok(http, server, "POST", f"{m}/branches", {"name": f"Store {i}"}, op)
        server.branches.append(branch["id"])
    product = await ok(
        http,
        server,
        "POST",
        f"{m}/products",
        {"name": "Oolong", "skus": [{"name": "250 g", "price": 1999}]},
        op,
    )
    sku = product["skus"][0]["id"]
    for branch in server.branches:
        body = {"branch": branch, "sku": sku, "qty": 1000}
        await ok(http, server, "POST", f"{m}/stock-receipts", body, op)
    show = await ok(http, server, "POST", f"{m}/shows", {"title": "Fan-out"}, op)
    server.show = show["id"]
    server.host_auth = {"Authorization": f"Bearer {show['host_token']}"}
    card = await ok(
        http,
        server,
        "POST",
        f"/api/shows/{server.show}/cards",
        {"sku": sku, "title": "Oolong 250 g, first flush", "price": 1899},
        server.host_auth,
    )
    server.card = card["id"]


async def seed_naive(http: aiohttp.ClientSession, server: Server, branches: list[str]) -> None:
    server.show = "show_naive"
    server.branches = list(branches)
    body = {"sku": "sku_naive", "title": "Oolong 250 g, first flush", "price": 1899}
    card = await ok(http, server, "POST", f"/api/shows/{server.show}/cards", body)
    server.card = card["id"]


# -- the benchmark ----------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.k: int = args.sockets
        self.rooms: int = args.rooms
        self.price = 1000
        self.http: aiohttp.ClientSession | None = None
        self.servers: list[Server] = []
        self.clients: Clients | None = None
        self.sockets: dict[int, list[int]] = {}  # target -> socket ids
        self.room0: dict[int, list[int]] = {}  # target -> socket ids in room 0
        self.result: dict[str, Any] = {}

    # other people's work on this machine ------------------------------------------------

    def own_cpu(self) -> float:
        """CPU seconds of every process of this benchmark (servers, clients, this one)."""
        pids = [os.getpid(), *(s.process.pid for s in self.servers)]
        if self.clients is not None:
            pids += [p.process.pid for p in self.clients.procs]
        total = 0.0
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                times = psutil.Process(pid).cpu_times()
                total += times.user + times.system
        return total

    def other_start(self) -> tuple[float, float, float]:
        return machine_busy(), self.own_cpu(), time.monotonic()

    def other_cores(self, start: tuple[float, float, float]) -> float:
        """Cores busy with work not ours since `start` (other jobs on the shared VM)."""
        machine, own, t = start
        elapsed = max(time.monotonic() - t, 1e-3)
        return max(0.0, (machine_busy() - machine - (self.own_cpu() - own)) / elapsed)

    async def wait_quiet(self) -> float:
        """Wait (at most --wait-quiet s) until other work used under --quiet-cores for 0.5 s."""
        deadline = time.monotonic() + self.args.wait_quiet
        while True:
            start = self.other_start()
            await asyncio.sleep(0.5)
            other = self.other_cores(start)
            if other < self.args.quiet_cores:
                return other
            if time.monotonic() > deadline:
                log(f"other work still uses {other:.2f} cores; measuring anyway")
                return other

    # HTTP ------------------------------------------------------------------------------

    def next_price(self) -> int:
        self.price = 1000 + (self.price - 999) % 900
        return self.price

    async def patch(self, server: Server, limit_s: float = 120) -> None:
        assert self.http is not None
        path = f"/api/shows/{server.show}/cards/{server.card}"
        body = {"price": self.next_price()}
        url = server.base + path
        async with (
            asyncio.timeout(limit_s),
            self.http.patch(url, json=body, headers=server.host_auth) as r,
        ):
            if r.status != 200:
                raise RuntimeError(f"PATCH {path}: {r.status} {await r.text()}")
            await r.read()

    async def burst_patches(self, server: Server, limit_s: float = 120) -> None:
        await asyncio.gather(*(self.patch(server, limit_s) for _ in range(BURST)))

    # set-up ----------------------------------------------------------------------------

    async def start_servers(self) -> None:
        hook_dir = self.work / "hook"
        hook_dir.mkdir()
        (hook_dir / "sitecustomize.py").write_text(PUBLISH_HOOK)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(hook_dir), env.get("PYTHONPATH", "")) if p
        )
        env["PYTHONUNBUFFERED"] = "1"
        python = sys.executable
        ours = await Server.start(
            "lianbo",
            [
                python,
                "-m",
                "streamserver.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--data-dir",
                str(self.work / "data"),
            ],
            env,
        )
        self.servers.append(ours)
        naive_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        naive = await Server.start(
            "naive", [python, str(NAIVE), "--host", "127.0.0.1", "--port", "0"], naive_env
        )
        self.servers.append(naive)
        log(f"lianbo pid {ours.process.pid} at {ours.base}; naive pid {naive.process.pid}")

    def spec(self, count: int, first_id: int, proc: int, procs: int) -> dict[str, Any]:
        sockets = []
        for target, server in enumerate(self.servers):
            for i in range(proc, count, procs):
                branch = server.branches[i % self.rooms]
                path = f"/ws/shows/{server.show}/rooms/{branch}"
                sockets.append([first_id + target * count + i, target, path])
        targets = [{"host": "127.0.0.1", "port": s.port} for s in self.servers]
        return {"targets": targets, "sockets": sockets}

    async def warm_up(self) -> None:
        """Cards, bursts and a few sockets with each server before anything is measured,
        so RSS with no socket already counts the code and buffers a socket first needs."""
        for server in self.servers:
            for _ in range(3):
                await self.patch(server)
            await self.burst_patches(server)
        spec = self.spec(40, 10_000_000, 0, 1)
        warm = await ClientProc.start(spec, self.work / "warm.json")
        answer = await warm.call({"cmd": "connect", "timeout": 60})
        for server in self.servers:
            await self.patch(server)
        await warm.stop()
        log(f"warm-up sockets: {answer}")
        await asyncio.sleep(1.5)

    async def baseline_cpu(self) -> dict[str, dict[str, float]]:
        """CPU of the same PATCH with no socket open: HTTP, auth, store, publish to none."""
        out = {}
        n = 30
        for server in self.servers:
            cpu0, threads0 = server.cpu_s(), server.threads_cpu_ns()
            for _ in range(n):
                await self.patch(server)
            await asyncio.sleep(0.2)
            out[server.name] = {
                "cpu_s_per_patch": (server.cpu_s() - cpu0) / n,
                "threads_ns_per_patch": (server.threads_cpu_ns() - threads0) / n,
            }
        return out

    async def connect(self) -> dict[str, Any]:
        procs = self.args.client_procs
        started = []
        for p in range(procs):
            spec = self.spec(self.k, 0, p, procs)
            started.append(await ClientProc.start(spec, self.work / f"client-{p}.json"))
        self.clients = Clients(started, self.work)
        for target in range(len(self.servers)):
            ids = [target * self.k + i for i in range(self.k)]
            self.sockets[target] = ids
            self.room0[target] = [sid for sid in ids if (sid - target * self.k) % self.rooms == 0]
        rss0 = {s.name: s.rss() for s in self.servers}
        t0 = time.monotonic()
        answers = await self.clients.all({"cmd": "connect", "timeout": 600})
        seconds = time.monotonic() - t0
        opened = sum(a["opened"] for a in answers)
        failed = sum(a["failed"] for a in answers)
        per_target = [sum(a["not_open_per_target"][t] for a in answers) for t in range(2)]
        log(
            f"{opened} sockets open ({failed} failed, not open per server {per_target})"
            f" in {seconds:.1f} s"
        )
        if opened != self.k * len(self.servers):
            raise RuntimeError(f"only {opened} of {self.k * len(self.servers)} sockets opened")
        await asyncio.sleep(3)  # viewer counts settle (sent every 2 s while they change)
        await self.clients.all({"cmd": "pause"})  # drained; the servers are idle
        await asyncio.sleep(1)
        rss = {}
        for server in self.servers:
            after = server.rss()
            rss[server.name] = {
                "rss_none_mb": rss0[server.name] / KB / KB,
                "rss_idle_mb": after / KB / KB,
                "rss_kb_per_socket": (after - rss0[server.name]) / KB / self.k,
            }
        await self.clients.all({"cmd": "read"})
        # Idle cost: with every socket open and nothing published, what do the servers
        # spend (websocket heartbeats: a ping per socket every 30 s, the client's pong)?
        cpu0 = {s.name: s.cpu_s() for s in self.servers}
        await asyncio.sleep(self.args.idle_seconds)
        for server in self.servers:
            busy = (server.cpu_s() - cpu0[server.name]) / self.args.idle_seconds
            rss[server.name]["idle_cpu_cores"] = busy
        return {"connect_s": seconds, "memory": rss}

    # measurements ----------------------------------------------------------------------

    async def one_card(self, target: int, mode: str) -> dict[str, Any]:
        server = self.servers[target]
        assert self.clients is not None
        # Clients keep reading (and answering pings) while we wait for the machine.
        await self.clients.all({"cmd": "read"})
        await self.wait_quiet()
        await self.clients.all({"cmd": mode})
        await self.clients.all({"cmd": "mark"})
        index = len(server.order)
        other = self.other_start()
        cpu0, threads0 = server.cpu_s(), server.threads_cpu_ns()
        requested = time.time_ns()
        await self.patch(server)
        (seq,) = await server.published_since(index, 1)
        await server.written([seq])  # paused clients read only once it has all gone out
        records, answers = await self.clients.collect(target, 1, 20)
        # After the clients have it all: lianbo writes after the PATCH has been answered.
        cpu = server.cpu_s() - cpu0
        threads = server.threads_cpu_ns() - threads0
        other_cores = self.other_cores(other)
        frames = records.by_seq({seq})[seq]
        start, _ = server.publishes[seq]
        sockets = self.sockets[target]
        card = delivery(frames, sockets, start)
        card["from_request_p99_ms"] = delivery(frames, sockets, requested)["p99_ms"]
        card["server_loop_ms"], _ = server.written_ms(start, time.time_ns())
        card["server_cpu_s"] = cpu
        card["server_threads_ns"] = threads
        card["frame_bytes"] = statistics.median(f[1] for f in frames.values()) if frames else 0
        card["client_cpu_s"] = sum(a["cpu_s"] for a in answers)
        card["other_cores"] = other_cores
        card["open"] = sum(a["open"] for a in answers)
        if card["open"] < len(sockets):
            log(f"{server.name}: only {card['open']} of {len(sockets)} sockets still open")
        return card

    async def burst(self, target: int, mode: str) -> dict[str, Any]:
        server = self.servers[target]
        assert self.clients is not None
        # Clients keep reading (and answering pings) while we wait for the machine.
        await self.clients.all({"cmd": "read"})
        await self.wait_quiet()
        await self.clients.all({"cmd": mode})
        await self.clients.all({"cmd": "mark"})
        index = len(server.order)
        other = self.other_start()
        cpu0 = server.cpu_s()
        done = asyncio.Event()
        probe = asyncio.create_task(self.probe_http(server, done))
        requested = time.time_ns()
        await self.burst_patches(server)
        answered = time.time_ns()
        seqs = await server.published_since(index, BURST)
        await server.written(seqs)
        records, _ = await self.clients.collect(target, BURST, 60)
        collected = time.time_ns()
        # Only now: lianbo goes on writing after the PATCHes have been answered.
        cpu = server.cpu_s() - cpu0
        other_cores = self.other_cores(other)
        done.set()
        probe_max_ms = await probe
        by_seq = records.by_seq(set(seqs))
        first = min(server.publishes[s][0] for s in seqs)
        last_publish = max(server.publishes[s][1] for s in seqs)
        written_ms, passes = server.written_ms(first, collected)
        sockets = self.sockets[target]
        last_per_socket = []
        missing = 0
        for sock in sockets:
            stamps = [by_seq[s][sock][0] for s in seqs if sock in by_seq[s]]
            missing += BURST - len(stamps)
            last_per_socket.append(max(stamps) if stamps else math.inf)
        last_per_socket.sort()
        span_ns = last_per_socket[-1] - first
        delivered = BURST * len(sockets) - missing
        return {
            "msgs_per_s": delivered / (span_ns / 1e9) if span_ns > 0 else math.nan,
            "all_10_p50_ms": ms(percentile(last_per_socket, 50) - first),
            "all_10_p99_ms": ms(percentile(last_per_socket, 99) - first),
            "all_10_max_ms": ms(span_ns),
            # From the first publish until the last write: lianbo's write passes (how many
            # it took), the naive loops' ends.
            "server_written_ms": written_ms,
            "server_passes": passes,
            "first_to_last_publish_end_ms": ms(last_publish - first),
            # Another client's GET /api/health during the burst: the loop's responsiveness.
            "http_probe_max_ms": probe_max_ms,
            "requests_ms": ms(answered - requested),
            "server_cpu_s": cpu,
            "missing": missing,
            "other_cores": other_cores,
        }

    async def probe_http(self, server: Server, done: asyncio.Event) -> float:
        """GET /api/health every 5 ms until `done`; the slowest answer in ms. (The naive
        server answers 404: as good a probe of its event loop.)"""
        assert self.http is not None
        worst = 0.0
        while not done.is_set():
            started = time.monotonic()
            async with self.http.get(server.base + "/api/health") as r:
                await r.read()
            worst = max(worst, (time.monotonic() - started) * 1e3)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.005):
                    await done.wait()
        return worst

    async def measure_common(self) -> dict[str, Any]:
        results: dict[str, dict[str, Any]] = {
            s.name: {"paused": [], "reading": [], "burst_reading": [], "burst_paused": []}
            for s in self.servers
        }
        order = list(range(len(self.servers)))
        for r in range(self.args.repeats):
            turn = order if r % 2 == 0 else order[::-1]
            for mode in ("pause", "read"):
                key = "paused" if mode == "pause" else "reading"
                for target in turn:
                    card = await self.one_card(target, mode)
                    results[self.servers[target].name][key].append(card)
                    log(
                        f"{self.servers[target].name:6} single {key:7}: p50 {card['p50_ms']:.1f}"
                        f" p99 {card['p99_ms']:.1f} max {card['max_ms']:.1f} ms"
                        f" (loop {card['server_loop_ms']:.1f} ms, missing {card['missing']},"
                        f" other work {card['other_cores']:.2f} cores)"
                    )
        for r in range(self.args.bursts):
            turn = order if r % 2 == 0 else order[::-1]
            for mode in ("read", "pause"):
                key = "burst_reading" if mode == "read" else "burst_paused"
                for target in turn:
                    burst = await self.burst(target, mode)
                    results[self.servers[target].name][key].append(burst)
                    log(
                        f"{self.servers[target].name:6} {key}: {burst['msgs_per_s']:,.0f} msgs/s,"
                        f" all 10 at p99 {burst['all_10_p99_ms']:.1f} max "
                        f"{burst['all_10_max_ms']:.1f} ms (missing {burst['missing']},"
                        f" other work {burst['other_cores']:.2f} cores)"
                    )
        await self.clients_read()
        return results

    async def clients_read(self) -> None:
        assert self.clients is not None
        await self.clients.all({"cmd": "read"})

    async def stall(self, target: int) -> dict[str, Any]:
        assert self.clients is not None
        server = self.servers[target]
        first = self.clients.procs[0]
        path = f"/ws/shows/{server.show}/rooms/{server.branches[0]}"
        opened = await first.call(
            {
                "cmd": "stall",
                "target": target,
                "path": path,
                "rcvbuf": STALL_RCVBUF,
                "mss": self.args.stall_mss,
            }
        )
        log(f"{server.name}: stalled client in room 0 ({opened})")
        return opened

    async def server_side(self, server: Server, local_port: int) -> tuple[str, int | None]:
        """The server's end of the stalled connection: TCP state and Send-Q (bytes)."""
        process = await asyncio.create_subprocess_exec(
            "ss",
            "-tanH",
            f"( sport = :{server.port} and dport = :{local_port} )",
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await process.communicate()
        fields = out.decode().split()
        if len(fields) < 3:
            return "gone", None
        return fields[0], int(fields[2])

    async def stalled_lianbo(self) -> dict[str, Any]:
        target = 0
        server = self.servers[target]
        assert self.clients is not None
        out: dict[str, Any] = {}
        stall = await self.stall(target)
        first = self.clients.procs[0]
        # Fill its kernel buffers (the server's send queue and its receive queue) so the
        # server's writes to it start queueing in user space.
        await self.clients.all({"cmd": "read"})
        await self.clients.all({"cmd": "mark", "record": False})
        cards = 0
        send_q_before = -1
        while cards < self.args.fill_cards_max:
            await self.burst_patches(server)
            cards += BURST
            status = await first.call({"cmd": "stall_status"})
            _, send_q = await self.server_side(server, stall["local_port"])
            if send_q == send_q_before and status["rcvq"] > 0:
                break
            send_q_before = send_q if send_q is not None else -1
        out["fill_cards"] = cards
        out["fill_server_send_q"] = send_q_before
        out["fill_stalled_rcvq"] = status["rcvq"]
        log(f"lianbo: stalled socket full after {cards} cards: {status}, server Send-Q {send_q}")
        # The others, with it in the room.
        stalled_cards = []
        for _ in range(self.args.repeats):
            card = await self.one_card(target, "pause")
            stalled_cards.append(card)
            log(
                f"lianbo single with a stalled client: p99 {card['p99_ms']:.1f} "
                f"max {card['max_ms']:.1f} ms (missing {card['missing']})"
            )
        cards += self.args.repeats
        out["others"] = summary_cards(stalled_cards)
        status = await first.call({"cmd": "stall_status"})
        out["still_connected_after_measurement"] = status["open"]
        # Until the server drops it.
        await self.clients.all({"cmd": "read"})
        await self.clients.all({"cmd": "mark", "record": False})
        phase_cards = 0
        t0 = time.monotonic()
        dropped_at = None
        send_q = None
        while cards < self.args.drop_cards_max:
            await self.burst_patches(server)
            cards += BURST
            phase_cards += BURST
            state, queued = await self.server_side(server, stall["local_port"])
            if state != "ESTAB":
                dropped_at = cards
                break
            send_q = queued
            if phase_cards % 500 == 0:
                log(f"lianbo: {cards} cards, server's end {state}, Send-Q {send_q}")
            await first.call({"cmd": "stall_status"})  # it sends a heartbeat now and then
        seconds = time.monotonic() - t0
        _, answers = await self.clients.collect(target, phase_cards, 120)
        waiting = sum(a["waiting"] for a in answers)
        # The server closes it without a reset: the client learns only when the orphaned
        # connection's zero-window probes give up. How long that takes, without more cards:
        noticed_s = None
        if dropped_at is not None:
            dropped = time.monotonic()
            while time.monotonic() - dropped < self.args.notice_wait:
                if not (await first.call({"cmd": "stall_status"}))["open"]:
                    noticed_s = time.monotonic() - dropped
                    break
                await asyncio.sleep(0.25)
        frame = out["others"].get("frame_bytes") or 0
        out.update(
            {
                "dropped_after_cards": dropped_at,
                "drop_phase_s": seconds,
                "server_send_q_before_drop": send_q,
                "frame_bytes": frame,
                # Written to it since its snapshot, less what the kernels held (the server's
                # send queue, the client's receive queue): the transport's unsent bytes.
                "unsent_kib_at_drop_est": (
                    (dropped_at * frame - (send_q or 0) - out["fill_stalled_rcvq"]) / KB
                    if dropped_at
                    else None
                ),
                "client_saw_reset_after_s": noticed_s,
                "others_missing_a_card": waiting,
            }
        )
        log(
            f"lianbo: stalled socket dropped after {dropped_at} cards ({seconds:.1f} s); "
            f"the client saw it after {noticed_s} s; others still waiting for a card: {waiting}"
        )
        await first.call({"cmd": "unstall"})
        return out

    async def stalled_naive(self) -> dict[str, Any]:
        target = 1
        server = self.servers[target]
        assert self.clients is not None
        out: dict[str, Any] = {}
        stall = await self.stall(target)
        first = self.clients.procs[0]
        await self.clients.all({"cmd": "read"})
        await self.clients.all({"cmd": "mark", "record": False})
        cards = 0
        frozen = None
        per_burst_s = 60.0
        while cards < self.args.drop_cards_max:
            started = time.monotonic()
            try:
                await self.burst_patches(server, limit_s=max(5.0, 4 * per_burst_s))
            except TimeoutError:
                frozen = cards
                break
            per_burst_s = time.monotonic() - started
            cards += BURST
            await first.call({"cmd": "stall_status"})  # it sends a heartbeat now and then
        out["frozen_after_cards"] = frozen
        if frozen is None:
            return out
        _, send_q = await self.server_side(server, stall["local_port"])
        log(f"naive: loop frozen after {frozen} cards (server Send-Q {send_q}); waiting")
        # The timed-out PATCHes' broadcasts are still running in the server, stuck on the
        # stalled socket: those 10 cards are what the others wait for.
        expected = cards + BURST
        await asyncio.sleep(self.args.freeze_wait)
        _, answers = await self.clients.collect(target, expected, 0)
        waiting = sum(a["waiting"] for a in answers)
        out["others_waiting_after_s"] = self.args.freeze_wait
        out["others_waiting"] = waiting
        log(f"naive: {waiting} of {self.k} sockets still waiting after {self.args.freeze_wait} s")
        index = len(server.order)
        await self.clients.all({"cmd": "record", "on": True})
        reset_ns = time.time_ns()
        await first.call({"cmd": "unstall"})
        records, answers = await self.clients.collect(target, expected, 120)
        seqs = await server.published_since(index, 1, limit_s=60)
        by_seq = records.by_seq(set(seqs))
        last = max((f[0] for f in by_seq[seqs[0]].values()), default=reset_ns)
        out["others_waiting_after_reset"] = sum(a["waiting"] for a in answers)
        out["released_after_reset_ms"] = ms(last - reset_ns)
        out["server_send_q_when_frozen"] = send_q
        log(f"naive: released {out['released_after_reset_ms']:.0f} ms after the reset")
        return out

    async def profile(self) -> dict[str, Any]:
        """py-spy on each server while it fans out paused single cards and bursts."""
        out = {}
        for target, server in enumerate(self.servers):
            path = self.work / f"profile-{server.name}.txt"
            spy = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(server.process.pid),
                "--rate",
                "250",
                "--format",
                "raw",
                "--native",
                "-o",
                str(path),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            await asyncio.sleep(1.5)
            for _ in range(self.args.repeats):
                await self.one_card(target, "pause")
            for _ in range(2):
                await self.burst(target, "pause")
            spy.send_signal(2)
            await spy.wait()
            dest = Path(self.args.profile) / f"fanout-{self.k}-{server.name}.txt"
            dest.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                shutil.copy(path, dest)
                out[server.name] = {"raw": str(dest), **fanout_profile(path)}
        await self.clients_read()
        return out

    async def run(self) -> dict[str, Any]:
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        try:
            await self.start_servers()
            ours, naive = self.servers
            await seed_lianbo(self.http, ours, self.rooms)
            await seed_naive(self.http, naive, ours.branches)
            await self.warm_up()
            baseline = await self.baseline_cpu()
            connected = await self.connect()
            load_before = os.getloadavg()
            common = await self.measure_common()
            stalled = {}
            if not self.args.skip_stall:
                stalled["lianbo"] = await self.stalled_lianbo()
                stalled["naive"] = await self.stalled_naive()
            # Last: py-spy pauses the server for every sample, which can make it miss pongs.
            profile = await self.profile() if self.args.profile else {}
            return self.report(baseline, connected, common, stalled, profile, load_before)
        finally:
            if self.clients is not None:
                await self.clients.stop()
            for server in self.servers:
                await server.stop()
            await self.http.close()

    def report(
        self,
        baseline: dict[str, dict[str, float]],
        connected: dict[str, Any],
        common: dict[str, dict[str, Any]],
        stalled: dict[str, Any],
        profile: dict[str, Any],
        load_before: tuple[float, float, float],
    ) -> dict[str, Any]:
        servers: dict[str, Any] = {}
        for server in self.servers:
            name = server.name
            runs = common[name]
            paused = runs["paused"]
            base = baseline[name]
            cpu_total = sum(c["server_cpu_s"] for c in paused)
            threads_total = sum(c["server_threads_ns"] for c in paused)
            n = len(paused)
            servers[name] = {
                "single_paused": summary_cards(paused),
                "single_reading": summary_cards(runs["reading"]),
                "burst_reading": summary_bursts(runs["burst_reading"]),
                "burst_paused": summary_bursts(runs["burst_paused"]),
                "cpu_us_per_socket": (cpu_total - n * base["cpu_s_per_patch"]) / n / self.k * 1e6,
                # All threads (lianbo's send helpers too), exactly: schedstat.
                "cpu_threads_us_per_socket": (threads_total - n * base["threads_ns_per_patch"])
                / n
                / self.k
                / 1e3,
                # The same psutil figure over the paused bursts (30 fan-outs: finer than
                # psutil's 10 ms ticks allow over 5 single cards).
                "cpu_us_per_message_burst": burst_cpu_us(
                    runs["burst_paused"], base["cpu_s_per_patch"], self.k
                ),
                "cpu_us_per_patch_no_sockets": base["cpu_s_per_patch"] * 1e6,
                "cpu_threads_us_per_patch_no_sockets": base["threads_ns_per_patch"] / 1e3,
                **connected["memory"][name],
                "stalled": stalled.get(name),
            }
        ours, naive = servers["lianbo"], servers["naive"]
        burst_ratio = ratio(ours["burst_paused"]["msgs_per_s"], naive["burst_paused"]["msgs_per_s"])
        burst_ratio_reading = ratio(
            ours["burst_reading"]["msgs_per_s"], naive["burst_reading"]["msgs_per_s"]
        )
        stalled_ours = stalled.get("lianbo") or {}
        targets = {
            "p99_within_100ms_paused": ours["single_paused"]["p99_ms"] <= TARGETS_MS,
            "p99_within_100ms_reading": ours["single_reading"]["p99_ms"] <= TARGETS_MS,
            "burst_5x_naive": burst_ratio >= 5,
            # Everyone else got every card, the stalled socket was dropped, and the others'
            # p99 with it in the room is within the target, or within 25 % (+2 ms) of the
            # same run's p99 without it when the machine cannot reach the target at all.
            "stalled_delays_no_one": (
                stalled_ours.get("others_missing_a_card") == 0
                and stalled_ours.get("dropped_after_cards") is not None
                and stalled_ours["others"]["p99_ms"]
                <= max(TARGETS_MS, 1.25 * ours["single_paused"]["p99_ms"] + 2)
            )
            if stalled_ours
            else None,
            "rss_under_20kb_per_socket": ours["rss_kb_per_socket"] < 20,
        }
        return rounded(
            {
                "benchmark": "fanout",
                "sockets": self.k,
                "rooms": self.rooms,
                "client_procs": self.args.client_procs,
                "repeats": self.args.repeats,
                "bursts": self.args.bursts,
                "connect_s": connected["connect_s"],
                "loadavg_before": list(load_before),
                "loadavg_after": list(os.getloadavg()),
                "lianbo": ours,
                "naive": naive,
                "burst_ratio_paused": burst_ratio,
                "burst_ratio_reading": burst_ratio_reading,
                "single_p99_ratio_paused": ratio(
                    naive["single_paused"]["p99_ms"], ours["single_paused"]["p99_ms"]
                ),
                "targets": targets,
                "profiles": profile,
            }
        )


def burst_cpu_us(bursts: list[dict[str, Any]], per_patch_s: float, k: int) -> float:
    if not bursts:
        return math.nan
    spent = sum(b["server_cpu_s"] for b in bursts) - len(bursts) * BURST * per_patch_s
    return spent / (len(bursts) * BURST * k) * 1e6


def fanout_profile(path: Path) -> dict[str, Any]:
    """From py-spy's raw (collapsed) stacks: where the fan-out's samples end up."""
    # lianbo writes in its show writer's passes (loop thread and send helpers alike).
    loop_frames = ("ShowFanout._pass", "write_share (", "broadcast (")
    total = kernel = 0
    leaves: dict[str, int] = {}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not any(f in stack for f in loop_frames):
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        if any(
            f.startswith(("send (libc", "sock_send", "write (libc", "os_write"))
            for f in frames[-3:]
        ):
            kernel += n
        leaf = frames[-1]
        leaves[leaf] = leaves.get(leaf, 0) + n
    top = sorted(leaves.items(), key=lambda kv: -kv[1])[:8]
    return {
        "fanout_samples": total,
        "in_send_syscall": kernel / total if total else None,
        "top_leaves": [[leaf, n / total] for leaf, n in top] if total else [],
    }


def summary_cards(cards: list[dict[str, Any]]) -> dict[str, Any]:
    if not cards:
        return {}
    return {
        "p50_ms": median_of(cards, "p50_ms"),
        "p99_ms": median_of(cards, "p99_ms"),
        "max_ms": median_of(cards, "max_ms"),
        "worst_p99_ms": max(c["p99_ms"] for c in cards),
        "worst_max_ms": max(c["max_ms"] for c in cards),
        "first_ms": median_of(cards, "first_ms"),
        "server_loop_ms": median_of(cards, "server_loop_ms"),
        "from_request_p99_ms": median_of(cards, "from_request_p99_ms"),
        "missing": sum(c["missing"] for c in cards),
        "coalesced": sum(c["coalesced"] for c in cards),
        "frame_bytes": median_of(cards, "frame_bytes"),
        "other_cores": median_of(cards, "other_cores"),
        "cards": len(cards),
        "p99s_ms": [c["p99_ms"] for c in cards],
    }


def summary_bursts(bursts: list[dict[str, Any]]) -> dict[str, Any]:
    if not bursts:
        return {}
    return {
        "msgs_per_s": median_of(bursts, "msgs_per_s"),
        "all_10_p99_ms": median_of(bursts, "all_10_p99_ms"),
        "all_10_max_ms": median_of(bursts, "all_10_max_ms"),
        "server_written_ms": median_of(bursts, "server_written_ms"),
        "server_passes": median_of(bursts, "server_passes"),
        "requests_ms": median_of(bursts, "requests_ms"),
        "http_probe_max_ms": median_of(bursts, "http_probe_max_ms"),
        "missing": sum(b["missing"] for b in bursts),
        "other_cores": median_of(bursts, "other_cores"),
        "runs_msgs_per_s": [b["msgs_per_s"] for b in bursts],
    }


def fmt(value: Any, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def table(result: dict[str, Any]) -> str:
    lines = [f"K = {result['sockets']} sockets over {result['rooms']} rooms"]
    for name in ("lianbo", "naive"):
        s = result[name]
        p, r = s["single_paused"], s["single_reading"]
        lines.append(
            f"  {name:6} card p50/p99/max: paused {fmt(p['p50_ms'])}/{fmt(p['p99_ms'])}/"
            f"{fmt(p['max_ms'])} ms, reading {fmt(r['p50_ms'])}/{fmt(r['p99_ms'])}/"
            f"{fmt(r['max_ms'])} ms; burst {fmt(s['burst_paused']['msgs_per_s'], ',.0f')} "
            f"msgs/s paused, {fmt(s['burst_reading']['msgs_per_s'], ',.0f')} reading; CPU "
            f"{fmt(s['cpu_us_per_socket'])} µs/socket; RSS {fmt(s['rss_kb_per_socket'])} "
            "KB/socket"
        )
    lines.append(f"  burst ratio lianbo/naive: {fmt(result['burst_ratio_paused'], '.2f')} (paused)")
    lines.append(f"  targets: {result['targets']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sockets", type=int, required=True, help="K sockets per server")
    parser.add_argument("--rooms", type=int, default=20, help="branch rooms (B)")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="single cards per mode")
    parser.add_argument("--bursts", type=int, default=3, help="bursts of 10 per mode")
    parser.add_argument("--fill-cards-max", type=int, default=600)
    parser.add_argument("--drop-cards-max", type=int, default=4000)
    parser.add_argument(
        "--stall-mss",
        type=int,
        default=1448,
        help="TCP_MAXSEG of the stalled client (0: loopback's 65483, megabytes of kernel buffer)",
    )
    parser.add_argument(
        "--notice-wait",
        type=float,
        default=30.0,
        help="how long to wait for the client to see a drop",
    )
    parser.add_argument("--freeze-wait", type=float, default=10.0)
    parser.add_argument(
        "--quiet-cores", type=float, default=0.3, help="other work that counts as quiet"
    )
    parser.add_argument(
        "--wait-quiet", type=float, default=30.0, help="max s to wait for quiet per measurement"
    )
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--skip-stall", action="store_true", help="no stalled-client phase")
    parser.add_argument("--profile", metavar="DIR", help="py-spy raw profiles into DIR")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fanout-"))
    try:
        result = asyncio.run(Bench(args, work).run())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(table(result))
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
