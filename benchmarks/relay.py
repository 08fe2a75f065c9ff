"""Relay benchmark: server CPU, fps, memory and added latency with N viewers of one show.

    .venv/bin/python benchmarks/relay.py --viewers 20 [--baseline naive] [--json] [--seconds 15]

Every party has its own process, all on loopback with no STUN server:

- the server: `python -m streamserver.cli serve` (ours) or `benchmarks/naive_relay.py`
  (`--baseline naive`: aiortc's MediaRelay, decode once and re-encode per viewer);
- one publisher (benchmarks/_peers.py publish): a moving 640x360 30 fps VP8 test
  pattern (~1.1 Mbps) plus Opus, encoded once before the run and sent in real time;
- the viewers (benchmarks/_peers.py view, up to --viewers-per-process per process),
  spread over 4 branch rooms. They never decode: they count frames (distinct RTP
  timestamps) and sequence gaps from the RTP header and sample arrival times.

Measured over a steady-state window (after every viewer has joined, received its first
frame and --warmup seconds more): the server process's CPU (psutil: user + system, all
threads), its RSS before the viewers joined and after the window, each viewer's
delivered fps, the client processes' CPU, and the added latency from the publisher's
send (RTP packet entering its DTLS transport) to the viewer's receive (datagram at
its socket). Packets are matched by a hash of their payload, which a passthrough
relay forwards unchanged; frames (the marker packet of each RTP timestamp) are matched
by timestamp, which works for the re-encoding baseline too.

With --baseline naive the same load (capped at --baseline-viewers, since the naive
relay saturates this 2-core machine at about 8 viewers) runs through the naive relay
in the same invocation, and the JSON carries baseline_cost / our_cost.

With --json the last line of output is one JSON object; otherwise a short table.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import math
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "benchmarks" / "_peers.py"
NAIVE = ROOT / "benchmarks" / "naive_relay.py"
ROOMS = 4
LISTENING = re.compile(r"listening on (http://[^/\s]+)/")
MB = 1024 * 1024
QUIET_OTHER_CORES = 0.25


def log(message: str) -> None:
    print(f"[relay-bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- processes --------------------------------------------------------------------------


@dataclass
class Proc:
    """A child process with a JSON-lines event stream on stdout and stderr in a file."""

    name: str
    process: asyncio.subprocess.Process
    log_path: Path
    events: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    async def start(cls, name: str, args: list[str], log_dir: Path) -> Proc:
        log_path = log_dir / f"{name}.log"
        with log_path.open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                *args,
                cwd=ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
            )
        return cls(name, process, log_path)

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def expect(self, event: str, timeout_s: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = await asyncio.wait_for(self.process.stdout.readline(), max(remaining, 0))
            except TimeoutError:
                raise RuntimeError(f"{self.name}: no '{event}' in {timeout_s:.0f} s") from None
            if not line:
                raise RuntimeError(f"{self.name} exited; its log ends:\n{self.tail()}")
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                self.events.append(message)
                if message.get("event") == "failed":
                    raise RuntimeError(f"{self.name} failed: {message}")
                if message.get("event") == event:
                    return message

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")

    async def stop(self, timeout_s: float = 15) -> None:
        if self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(self.process.wait(), timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


async def start_server(kind: str, log_dir: Path) -> tuple[Proc, str]:
    if kind == "naive":
        args = [sys.executable, str(NAIVE), "--host", "127.0.0.1", "--port", "0"]
    else:
        data_dir = log_dir / "data"
        data_dir.mkdir(exist_ok=True)
        args = [
            sys.executable, "-m", "streamserver.cli", "serve", "--host", "127.0.0.1",
            "--port", "0", "--data-dir", str(data_dir), "--ice-host", "127.0.0.1",
        ]  # fmt: skip
    server = await Proc.start(f"server-{kind}", args, log_dir)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = LISTENING.search(server.log_path.read_text(errors="replace"))
        if match:
            return server, match.group(1)
        if server.process.returncode is not None:
            break
        await asyncio.sleep(0.05)
    await server.stop()
    raise RuntimeError(f"{kind} server did not start; its log ends:\n{server.tail()}")


async def create_show(http: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async def post(path: str, body: dict[str, Any], token: str | None = None) -> Any:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        async with http.post(base + path, json=body, headers=headers) as response:
            if response.status != 201:
                raise RuntimeError(f"POST {path}: {response.status} {await response.text()}")
            return await response.json()

    created = await post("/api/merchants", {"name": "Bench Tea"})
    merchant, token = created["merchant"]["id"], created["operator_token"]
    for i in range(ROOMS):
        await post(f"/api/merchants/{merchant}/branches", {"name": f"Branch {i}"}, token)
    show: dict[str, Any] = await post(f"/api/merchants/{merchant}/shows", {"title": "Bench"}, token)
    return show


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


def machine_busy_seconds() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def softirq_seconds() -> float:
    """Kernel softirq time (loopback UDP delivery lands here, outside any process)."""
    return float(getattr(psutil.cpu_times(), "softirq", 0.0))


async def py_spy(
    args: argparse.Namespace, pid: int, seconds: float, name: str
) -> asyncio.subprocess.Process | None:
    """With --py-spy DIR: sample the server's stacks for `seconds` (collapsed stacks)."""
    if args.py_spy is None:
        return None
    args.py_spy.mkdir(parents=True, exist_ok=True)
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return await asyncio.create_subprocess_exec(
        exe, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))),
        "--rate", "200", "--nonblocking", "--format", "raw",
        "--output", str(args.py_spy / f"{name}.txt"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def sample_timeline(server: int, clients: list[int], seconds: float) -> list[dict]:
    """Cores used each second of the window: server, clients, softirq, everything else."""

    def snapshot() -> tuple[float, ...]:
        return (
            time.monotonic(),
            cpu_seconds([server]),
            cpu_seconds(clients),
            softirq_seconds(),
            machine_busy_seconds(),
        )

    timeline = []
    end = time.monotonic() + seconds
    last = snapshot()
    while (remaining := end - time.monotonic()) > 0:
        await asyncio.sleep(min(1.0, remaining))
        now = snapshot()
        span = now[0] - last[0]
        server_c, clients_c, softirq_c, machine_c = (
            (b - a) / span for b, a in zip(now[1:], last[1:], strict=True)
        )
        timeline.append(
            {
                "t": round(time.time(), 2),
                "server": round(server_c, 2),
                "clients": round(clients_c, 2),
                "machine": round(machine_c, 2),
                "other": round(machine_c - server_c - clients_c - softirq_c, 2),
            }
        )
        last = now
    return timeline


def rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / MB


# -- one run ----------------------------------------------------------------------------


async def run(kind: str, viewers: int, args: argparse.Namespace, media: Path, tmp: Path) -> dict:
    """Start a server, a publisher and `viewers` viewers; measure; tear everything down."""
    run_dir = tmp / f"{kind}-{viewers}"
    run_dir.mkdir()
    server, base = await start_server(kind, run_dir)
    children: list[Proc] = []
    try:
        log(f"{kind}: server at {base} (pid {server.pid}), log {server.log_path}")
        async with aiohttp.ClientSession() as http:
            show = await create_show(http, base)
        publisher_log = run_dir / "publisher.json"
        publisher_args = [
            sys.executable, str(PEERS), "publish", "--media", str(media),
            "--whip", base + show["whip_url"], "--token", show["host_token"],
            "--out", str(publisher_log),
        ]  # fmt: skip
        if args.no_audio:
            publisher_args.append("--no-audio")
        publisher = await Proc.start("publisher", publisher_args, run_dir)
        children.append(publisher)
        await publisher.expect("ready", 30)
        await asyncio.sleep(2)  # the first keyframe, then a steady publisher

        cpu0, t0 = cpu_seconds([server.pid]), time.monotonic()
        spy = await py_spy(args, server.pid, args.idle_seconds, f"{kind}-publisher-only")
        await asyncio.sleep(args.idle_seconds)
        if spy is not None:
            await spy.wait()
        idle_cores = (cpu_seconds([server.pid]) - cpu0) / (time.monotonic() - t0)
        rss_before = rss_mb(server.pid)
        log(f"{kind}: publisher only: server {idle_cores:.3f} cores, RSS {rss_before:.1f} MB")

        rooms = [base + room["whep_url"] for room in show["rooms"]]
        urls = [rooms[i % len(rooms)] for i in range(viewers)]
        sample = max(1, viewers // args.latency_viewers)
        viewer_procs: list[Proc] = []
        outputs: list[Path] = []
        per_process = args.viewers_per_process
        join_started = time.monotonic()
        for p, first in enumerate(range(0, viewers, per_process)):
            urls_file = run_dir / f"viewers-{p}.urls.json"
            urls_file.write_text(json.dumps(urls[first : first + per_process]))
            outputs.append(run_dir / f"viewers-{p}.json")
            view_args = [
                sys.executable, str(PEERS), "view", "--urls-file", str(urls_file),
                "--first-index", str(first), "--out", str(outputs[-1]), "--rx", args.rx,
                "--sample", str(sample), "--concurrency", str(args.join_concurrency),
            ]  # fmt: skip
            proc = await Proc.start(f"viewers-{p}", view_args, run_dir)
            viewer_procs.append(proc)
            children.append(proc)
        joined = await asyncio.gather(*(p.expect("joined", 60 + viewers) for p in viewer_procs))
        connected = sum(j["connected"] for j in joined)
        receiving_events = await asyncio.gather(*(p.expect("receiving", 30) for p in viewer_procs))
        receiving = sum(r["viewers"] for r in receiving_events)
        join_s = time.monotonic() - join_started
        log(f"{kind}: {connected}/{viewers} connected, {receiving} receiving after {join_s:.1f} s")
        await asyncio.sleep(args.warmup)

        client_pids = [publisher.pid] + [p.pid for p in viewer_procs]
        for p in viewer_procs:
            p.send("start")
        await asyncio.gather(*(p.expect("started", 10) for p in viewer_procs))
        t0 = time.monotonic()
        server0, publisher0 = cpu_seconds([server.pid]), cpu_seconds([publisher.pid])
        viewers0, machine0 = cpu_seconds(client_pids[1:]), machine_busy_seconds()
        softirq0 = softirq_seconds()
        spy = await py_spy(args, server.pid, args.seconds, f"{kind}-{viewers}")
        timeline = await sample_timeline(server.pid, client_pids, args.seconds)
        if spy is not None:
            await spy.wait()
        server1, publisher1 = cpu_seconds([server.pid]), cpu_seconds([publisher.pid])
        viewers1, machine1 = cpu_seconds(client_pids[1:]), machine_busy_seconds()
        softirq1 = softirq_seconds()
        window = time.monotonic() - t0
        for p in viewer_procs:
            p.send("stop")
        await asyncio.gather(*(p.expect("stopped", 30) for p in viewer_procs))
        rss_after = rss_mb(server.pid)

        for p in viewer_procs:
            p.send("quit")
        await asyncio.gather(*(p.expect("done", 60) for p in viewer_procs))
        publisher.send("quit")
        await publisher.expect("done", 30)
    finally:
        for child in children:
            await child.stop()
        await server.stop()

    seen = [json.loads(path.read_text()) for path in outputs]
    sent = json.loads(publisher_log.read_text())
    server_cores = (server1 - server0) / window
    result = {
        "server": "lianbo" if kind == "ours" else "naive (MediaRelay + re-encode)",
        "viewers": viewers,
        "connected": connected,
        "receiving": receiving,
        "join_s": round(join_s, 1),
        "window_s": round(window, 1),
        "server_cores": round(server_cores, 3),
        "server_cores_publisher_only": round(idle_cores, 3),
        "core_ms_per_viewer_s": round(server_cores * 1000 / viewers, 2),
        "marginal_core_ms_per_viewer_s": round((server_cores - idle_cores) * 1000 / viewers, 2),
        "rss_mb_publisher_only": round(rss_before, 1),
        "rss_mb": round(rss_after, 1),
        "rss_growth_mb_per_viewer": round((rss_after - rss_before) / viewers, 3),
        **delivery([v for s in seen for v in s["viewers"]]),
        "latency_ms": latency_packets(sent, seen),
        "frame_latency_ms": latency_frames(sent, seen),
        "client_cores": {
            "publisher": round((publisher1 - publisher0) / window, 3),
            "viewers": round((viewers1 - viewers0) / window, 3),
            "viewer_processes": len(viewer_procs),
            "viewer_rx": args.rx,
        },
        **latency_by_second(timeline, sent, seen),
        "machine_cores_busy": round((machine1 - machine0) / window, 2),
        "softirq_cores": round((softirq1 - softirq0) / window, 3),
        # CPU outside this benchmark's processes and softirq (other jobs on the machine)
        "other_cores_busy": round(
            (
                machine1
                - machine0
                - (server1 - server0 + publisher1 - publisher0 + viewers1 - viewers0)
                - (softirq1 - softirq0)
            )
            / window,
            2,
        ),
        "machine_cores": psutil.cpu_count(),
        "publisher_video_kbps": sent["video_kbps"],
    }
    if not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return result


# -- analysis ---------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def delivery(viewers: list[dict[str, Any]]) -> dict[str, Any]:
    fps = [v["fps"] for v in viewers]
    expected = sum(v["expected"] for v in viewers)
    first = [v["first_frame_s"] for v in viewers if v["first_frame_s"] is not None]
    return {
        "fps_min": min(fps, default=0.0),
        "fps_median": statistics.median(fps) if fps else 0.0,
        "viewers_below_29fps": sum(f < 29 for f in fps),
        "viewer_kbps_median": statistics.median(v["kbps"] for v in viewers) if viewers else 0,
        "video_loss_pct": round(100 * sum(v["lost"] for v in viewers) / max(expected, 1), 3),
        "first_frame_s_median": round(statistics.median(first), 3) if first else None,
        "first_frame_s_max": round(max(first), 3) if first else None,
    }


def summary(latencies: list[float], samples: int) -> dict[str, Any]:
    if not latencies:
        return {"p50": None, "p95": None, "max": None, "matched": 0, "samples": samples}
    ms = [x * 1000 for x in latencies]
    return {
        "p50": round(percentile(ms, 50), 1),
        "p95": round(percentile(ms, 95), 1),
        "max": round(max(ms), 1),
        "matched": len(ms),
        "samples": samples,
    }


def packet_latencies(sent: dict[str, Any], seen: list[dict[str, Any]]) -> list[tuple]:
    """(receive time, latency) per sampled packet, matched to its send by payload hash."""
    sends = {int(k): sorted(v) for k, v in sent["packets"].items()}
    matched = []
    for batch in seen:
        for key, received in batch["packet_samples"]:
            times = sends.get(key)
            if not times:
                continue
            i = bisect.bisect_right(times, received) - 1
            if i >= 0 and received - times[i] < 10:
                matched.append((received, received - times[i]))
    return matched


def frame_latencies(sent: dict[str, Any], seen: list[dict[str, Any]]) -> list[tuple]:
    """(receive time, latency) per sampled frame: its marker packet, matched by timestamp."""
    frames = {int(k): v for k, v in sent["frames"].items()}
    matched = []
    for batch in seen:
        for ts, received in batch["frame_samples"]:
            # A re-encoding relay's timebase conversions may round a timestamp by a tick.
            sent_at = frames.get(ts, frames.get((ts + 1) & 0xFFFFFFFF, frames.get(ts - 1)))
            if sent_at is not None and 0 <= received - sent_at < 10:
                matched.append((received, received - sent_at))
    return matched


def latency_packets(sent: dict[str, Any], seen: list[dict[str, Any]]) -> dict[str, Any]:
    """Viewer receive minus publisher send, packets matched by payload hash."""
    samples = sum(len(batch["packet_samples"]) for batch in seen)
    return summary([latency for _, latency in packet_latencies(sent, seen)], samples)


def latency_by_second(
    timeline: list[dict[str, Any]], sent: dict[str, Any], seen: list[dict[str, Any]]
) -> dict[str, Any]:
    """Each second's median packet latency next to its CPU figures (to spot stalls), and
    packet and frame latency over the quiet seconds only: those in which, and in the
    second before which, processes outside the benchmark used less than
    QUIET_OTHER_CORES (on a shared machine other jobs starve the server now and then;
    the backlog they cause is not the relay's latency)."""
    ends = [entry["t"] for entry in timeline]
    start = ends[0] - 1 if ends else 0.0
    quiet = [
        all(e["other"] < QUIET_OTHER_CORES for e in timeline[max(i - 1, 0) : i + 1])
        for i in range(len(timeline))
    ]
    packets: list[list[float]] = [[] for _ in timeline]
    for received, latency in packet_latencies(sent, seen):
        i = bisect.bisect_left(ends, received)
        if i < len(ends):
            packets[i].append(latency)
    frames: list[float] = []
    for received, latency in frame_latencies(sent, seen):
        i = bisect.bisect_left(ends, received)
        if i < len(ends) and quiet[i]:
            frames.append(latency)
    for entry, bucket in zip(timeline, packets, strict=True):
        entry["latency_p50_ms"] = round(percentile(bucket, 50) * 1000, 1) if bucket else None
        entry["t"] = round(entry["t"] - start, 1)
    quiet_packets = [x for bucket, q in zip(packets, quiet, strict=True) if q for x in bucket]
    return {
        "timeline": timeline,
        "quiet_seconds": sum(quiet),
        "latency_ms_quiet": summary(quiet_packets, len(quiet_packets)),
        "frame_latency_ms_quiet": summary(frames, len(frames)),
    }


def latency_frames(sent: dict[str, Any], seen: list[dict[str, Any]]) -> dict[str, Any]:
    """Viewer receive of a frame's marker packet minus the publisher's send of it."""
    samples = sum(len(batch["frame_samples"]) for batch in seen)
    return summary([latency for _, latency in frame_latencies(sent, seen)], samples)


# -- output -----------------------------------------------------------------------------


def table(results: list[dict[str, Any]]) -> str:
    """One row per server; latencies in ms, `quiet` = over the seconds without other load."""
    head = (
        f"{'server':<14} {'N':>4} {'cores':>6} {'ms/v-s':>7} {'marg.':>6} "
        f"{'fps min/med':>11} {'RSS MB':>7} {'MB/v':>5} {'pkt p50/p95':>12} "
        f"{'frame p50/p95':>14} {'quiet frame':>12} {'client':>6} {'other':>5}"
    )
    rows = [head, "-" * len(head)]

    def pair(d: dict[str, Any]) -> str:
        return "-" if d["p50"] is None else f"{d['p50']:.0f}/{d['p95']:.0f}"

    for r in results:
        name = "lianbo" if r["server"] == "lianbo" else "naive"
        clients = r["client_cores"]["publisher"] + r["client_cores"]["viewers"]
        rows.append(
            f"{name:<14} {r['viewers']:>4} {r['server_cores']:>6.3f} "
            f"{r['core_ms_per_viewer_s']:>7.2f} {r['marginal_core_ms_per_viewer_s']:>6.2f} "
            f"{r['fps_min']:>5.1f}/{r['fps_median']:<5.1f} {r['rss_mb']:>7.1f} "
            f"{r['rss_growth_mb_per_viewer']:>5.2f} {pair(r['latency_ms']):>12} "
            f"{pair(r['frame_latency_ms']):>14} {pair(r['frame_latency_ms_quiet']):>12} "
            f"{clients:>6.2f} {r['other_cores_busy']:>5.2f}"
        )
    rows.append(
        "cores: server process; ms/v-s: its core-ms per viewer-second (marg.: above the "
        "publisher-only load); pkt: packets matched by payload hash (passthrough only); "
        "frame: marker packets matched by RTP timestamp; quiet: seconds without other "
        "load; client: publisher + viewer processes' cores; other: cores used by "
        "processes outside the benchmark"
    )
    return "\n".join(rows)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="lianbo-relay-bench-"))
    try:
        media = tmp / "media.bin"
        encoder = await Proc.start(
            "encode", [sys.executable, str(PEERS), "encode", str(media)], tmp
        )
        encoded = await encoder.expect("encoded", 120)
        await encoder.process.wait()
        log(f"media: {encoded}")
        report: dict[str, Any] = {
            "viewers": args.viewers,
            "seconds": args.seconds,
            "media": {"video": "VP8 640x360 30 fps, keyframe every 1 s", **encoded},
        }
        ours = await run("ours", args.viewers, args, media, tmp)
        report.update(
            {
                "core_ms_per_viewer_s": ours["core_ms_per_viewer_s"],
                "marginal_core_ms_per_viewer_s": ours["marginal_core_ms_per_viewer_s"],
                "ours": ours,
            }
        )
        if args.baseline == "naive":
            count = min(args.viewers, args.baseline_viewers)
            baseline = await run("naive", count, args, media, tmp)
            report["baseline_viewers"] = count
            report["baseline"] = baseline
            report["ratio"] = round(
                baseline["core_ms_per_viewer_s"] / max(ours["core_ms_per_viewer_s"], 1e-9), 1
            )
            report["ratio_marginal"] = round(
                baseline["marginal_core_ms_per_viewer_s"]
                / max(ours["marginal_core_ms_per_viewer_s"], 1e-9),
                1,
            )
        return report
    finally:
        if args.keep:
            log(f"kept logs in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Relay benchmark: server CPU, fps, RSS and latency with N viewers."
    )
    parser.add_argument("--viewers", type=int, required=True, help="viewers of the show (N)")
    parser.add_argument("--baseline", choices=["naive"], help="also run the naive relay")
    parser.add_argument(
        "--baseline-viewers", type=int, default=6, help="cap on the naive relay's viewers"
    )
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--seconds", type=float, default=15, help="measurement window")
    parser.add_argument("--warmup", type=float, default=3, help="after all viewers receive")
    parser.add_argument("--idle-seconds", type=float, default=3, help="publisher-only window")
    parser.add_argument("--viewers-per-process", type=int, default=100)
    parser.add_argument("--join-concurrency", type=int, default=8, help="per viewer process")
    parser.add_argument(
        "--rx",
        choices=["raw", "tap"],
        default="raw",
        help="viewer receive path: raw (count RTP at the ICE socket, cheap) or tap "
        "(aiortc's receive path up to streamserver.relay.tap.tap_receiver)",
    )
    parser.add_argument(
        "--latency-viewers",
        type=int,
        default=10,
        help="sample about this many viewers' worth of packets for latency",
    )
    parser.add_argument("--no-audio", action="store_true", help="publish video only")
    parser.add_argument("--keep", action="store_true", help="keep logs and records")
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="DIR",
        help="profile the server with py-spy during the windows (collapsed stacks in DIR; "
        "costs the server some CPU: use for profiles, not for the figures)",
    )
    args = parser.parse_args()
    if args.viewers < 1:
        parser.error("--viewers must be at least 1")
    report = asyncio.run(main_async(args))
    results = [report["ours"]] + ([report["baseline"]] if "baseline" in report else [])
    print(table(results))
    if "ratio" in report:
        print(
            f"naive/ours server CPU per viewer-second: {report['ratio']}x "
            f"(marginal {report['ratio_marginal']}x; naive at {report['baseline_viewers']} viewers)"
        )
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
