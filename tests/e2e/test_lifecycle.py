"""`lianbo serve` as a process: 200 viewers come and go without leaving anything behind,
and SIGTERM/SIGINT close every peer and exit cleanly."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import psutil
import pytest
from aiortc import VideoStreamTrack
from aiortc.mediastreams import AudioStreamTrack

from streamserver.relay import client
from tests.conftest import ServerProcess, seed
from tests.relay_probe import eventually, record


async def health(server: ServerProcess) -> dict[str, Any]:
    async with server.http.get(server.url("/api/health")) as r:
        return dict(await r.json())


async def test_200_joins_and_leaves_leave_nothing_behind(server_process: ServerProcess) -> None:
    server = server_process
    seeded = await seed(server)
    publisher = await client.publish(
        server.http, seeded.whip_url, seeded.host_token, [AudioStreamTrack(), VideoStreamTrack()]
    )
    urls = list(seeded.whep_urls.values())
    memory = psutil.Process(server.process.pid).memory_info
    baseline: dict[str, Any] = {"tasks": 10**9}

    async def cycle(i: int) -> None:
        viewer = await client.view(server.http, urls[i % len(urls)])
        log = record(viewer.pc)
        await log.wait(lambda: len(log.packets) >= 1)  # really joined: media flowed
        if i % 2:
            await viewer.close(server.http)  # leaves with WHEP DELETE
        else:
            await viewer.pc.close()  # just goes away: the server sees the DTLS close

    async def rounds(first: int, count: int) -> dict[str, Any]:
        for r in range(first, first + count):
            await asyncio.gather(*(cycle(r * 10 + k) for k in range(10)))
        settled: dict[str, Any] = {}

        async def idle() -> bool:
            settled.update(await health(server))
            relay = settled["relay"]
            return relay["viewers"] == relay["outputs"] == relay["tasks"] == 0 and (
                settled["tasks"] <= baseline["tasks"]
            )

        await eventually(idle)
        return settled

    # A first round warms pools (HTTP keep-alive connections are tasks too).
    baseline = await rounds(0, 1)
    await rounds(1, 10)
    rss_at_100 = memory().rss
    after = await rounds(11, 10)
    rss_at_200 = memory().rss

    assert after["relay"] == baseline["relay"]
    # A connected viewer holds about 0.5 MB on the server: leaking even a tenth of
    # one per cycle would add 5 MB over the last 100 cycles.
    growth_per_cycle = (rss_at_200 - rss_at_100) / 100
    assert growth_per_cycle < 50_000, f"{growth_per_cycle:.0f} bytes per join/leave"
    await publisher.close(server.http, seeded.host_token)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_closes_every_peer_and_exits_cleanly(
    server_process: ServerProcess, signum: int
) -> None:
    server = server_process
    seeded = await seed(server)
    publisher = await client.publish(
        server.http, seeded.whip_url, seeded.host_token, [VideoStreamTrack()]
    )
    viewer = await client.view(server.http, seeded.whep_urls[seeded.branches[0]])
    log = record(viewer.pc)
    await log.wait(lambda: len(log.packets) >= 1)

    assert await server.stop(signum) == 0
    # The server said goodbye over DTLS: both clients see their peer close.
    await eventually(lambda: viewer.pc.connectionState == "closed", timeout_s=5)
    await eventually(lambda: publisher.pc.connectionState == "closed", timeout_s=5)
    await viewer.pc.close()
    await publisher.pc.close()
