"""The HTTP ceiling for benchmarks/flashsale.py: aiohttp answering every POST at once.

    python benchmarks/_trivial_server.py

Prints `listening <port>` once it accepts connections. Each POST's body is read and
answered 201 with a small JSON object: what one process of aiohttp costs per request on
this machine, measured with the same load processes as the purchases right after them
(shared/notes "Purchases": about 22,000/s with wrk). A slow hour of the machine shows
here as well as in the purchases.
"""

from __future__ import annotations

import asyncio
import socket

from aiohttp import web

ANSWER = b'{"id":"o_trivial","state":"placed","placed_at_ms":0}'  # what the load keeps of a 201


async def answer(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=ANSWER, status=201, content_type="application/json")


async def main() -> None:
    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    print(f"listening {sock.getsockname()[1]}", flush=True)
    await asyncio.Event().wait()  # until the benchmark stops this process


if __name__ == "__main__":
    asyncio.run(main())
