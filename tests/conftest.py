"""Shared fixtures: a real lianbo server on loopback, and a seeded merchant with a show."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import redis
from aiohttp import web
from aiohttp.test_utils import TestServer

from streamserver.app import make_app
from streamserver.config import Config
from streamserver.keys import RELAY
from streamserver.relay import tap
from streamserver.relay.sessions import Relay

# Tests stay on loopback (aioice leaves 127.0.0.1 out of its host candidates otherwise).
tap.restrict_host_addresses(["127.0.0.1"])

REDIS_START_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """REDIS_URL if set, else a throwaway `redis-server` on a free loopback port.

    Tests never flush it: each works in fresh merchants and shows (keys are namespaced),
    so REDIS_URL may point at a shared server.
    """
    if url := os.environ.get("REDIS_URL"):
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("no redis-server: apt-get install -y redis-server, or set REDIS_URL")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(workdir), "--logfile", "redis.log"]
    server = subprocess.Popen(command)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + REDIS_START_S
        while True:  # the server is up when it answers: there is no event to wait on
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert server.poll() is None, "redis-server exited"
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)
        client.close()
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(data_dir=tmp_path / "data", ice_hosts=("127.0.0.1",))


@dataclass
class Server:
    """A running server: its base URL, its app (to look inside) and an HTTP client."""

    base: str
    app: web.Application
    http: aiohttp.ClientSession

    @property
    def relay(self) -> Relay:
        return self.app[RELAY]

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture
async def server(config: Config) -> AsyncIterator[Server]:
    app = make_app(config)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    async with aiohttp.ClientSession() as http:
        yield Server(str(test_server.make_url("")).rstrip("/"), app, http)
    await test_server.close()


@dataclass
class Seeded:
    """A merchant with two branches and a show, as the HQ operator would create them."""

    merchant: str
    operator_token: str
    branches: list[str]
    show: str
    host_token: str
    whip_url: str
    whep_urls: dict[str, str]  # branch id -> WHEP endpoint


async def seed(
    server: Server | ServerProcess, branch_names: tuple[str, ...] = ("Xuhui", "Pudong")
) -> Seeded:
    async with server.http.post(server.url("/api/merchants"), json={"name": "Cha Li"}) as r:
        assert r.status == 201, await r.text()
        created = await r.json()
    merchant, token = created["merchant"]["id"], created["operator_token"]
    auth = {"Authorization": f"Bearer {token}"}
    branches = []
    for name in branch_names:
        url = server.url(f"/api/merchants/{merchant}/branches")
        async with server.http.post(url, json={"name": name}, headers=auth) as r:
            assert r.status == 201, await r.text()
            branches.append((await r.json())["id"])
    url = server.url(f"/api/merchants/{merchant}/shows")
    async with server.http.post(url, json={"title": "Autumn launch"}, headers=auth) as r:
        assert r.status == 201, await r.text()
        show = await r.json()
    return Seeded(
        merchant=merchant,
        operator_token=token,
        branches=branches,
        show=show["id"],
        host_token=show["host_token"],
        whip_url=server.url(show["whip_url"]),
        whep_urls={room["branch"]["id"]: server.url(room["whep_url"]) for room in show["rooms"]},
    )


@pytest.fixture
async def seeded(server: Server) -> Seeded:
    return await seed(server)


@dataclass
class ServerProcess:
    """`lianbo serve` in its own process, as an operator runs it."""

    process: asyncio.subprocess.Process
    base: str
    http: aiohttp.ClientSession
    log: list[str]  # its stderr, line by line, drained as it comes
    draining: asyncio.Task[None]

    def url(self, path: str) -> str:
        return self.base + path

    async def stop(self, signum: int = signal.SIGTERM) -> int:
        """Signal it and wait for it to end; returns its exit status."""
        if self.process.returncode is None:
            self.process.send_signal(signum)
        async with asyncio.timeout(20):
            status = await self.process.wait()
            await self.draining
        return status


async def launch_server(data_dir: Path, http: aiohttp.ClientSession, *extra: str) -> ServerProcess:
    command = ["-m", "streamserver.cli", "serve", "--port", "0", "--data-dir", str(data_dir)]
    command += ["--ice-host", "127.0.0.1", *extra]
    process = await asyncio.create_subprocess_exec(
        sys.executable, *command, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    log: list[str] = []
    first_line = (await process.stderr.readline()).decode()
    match = re.search(r"listening on (http://127\.0\.0\.1:\d+)/", first_line)
    assert match, first_line

    async def drain(stream: asyncio.StreamReader) -> None:
        async for line in stream:
            log.append(line.decode())

    draining = asyncio.create_task(drain(process.stderr))
    return ServerProcess(process, match.group(1), http, log, draining)


@pytest.fixture
async def server_process(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    async with aiohttp.ClientSession() as http:
        server = await launch_server(tmp_path / "data", http)
        try:
            yield server
        finally:
            status = await server.stop()
            assert status == 0, server.log
            assert not any("Traceback" in line for line in server.log), "".join(server.log)
