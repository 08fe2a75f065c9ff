"""The naive baseline for benchmarks/fanout.py: a per-socket awaiting broadcast loop.

A standalone aiohttp app with the URL shapes and frames the benchmark uses: the room
websocket `GET /ws/shows/{show}/rooms/{branch}` (the client sends msgpack `hello`, gets a
`snapshot`, then live frames), `POST /api/shows/{show}/cards` and
`PATCH /api/shows/{show}/cards/{card}` (no store, no auth). Websockets are opened as
lianbo opens them (compress=False, heartbeat=30 s). A card goes out the way most
aiohttp code broadcasts:

    for ws in room:
        await ws.send_bytes(msgpack.packb({"v": 1, "type": ..., "seq": ..., "data": ...}))

room by room, with the same card fields as lianbo's frames (so the frames are about
the same size), and the request is answered when the loop ends.

    python benchmarks/naive_fanout.py --host 127.0.0.1 --port 0

logs "naive listening on http://HOST:PORT/" to stderr, like `lianbo serve`, and one
line per broadcast: "FANOUT-PUBLISH <seq> <start ns> <end ns> <type>" (CLOCK_REALTIME,
taken just before the loop starts and just after it ends).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from collections import defaultdict
from typing import Any

import msgpack
from aiohttp import WSMsgType, web

ROOMS: web.AppKey[dict[str, set[web.WebSocketResponse]]] = web.AppKey("rooms", dict)
CARDS: web.AppKey[dict[str, dict[str, Any]]] = web.AppKey("cards", dict)
SEQ: web.AppKey[list[int]] = web.AppKey("seq", list)


def present(card: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": card["id"],
        "sku": card["sku"],
        "title": card["title"],
        "list_price": card["list_price"],
        "price": card["price"],
        "ends_at_ms": card.get("ends_at_ms"),
        "limit_per_shopper": card.get("limit_per_shopper"),
        "available_here": 100,
        "pickup": True,
        "delivery": True,
        "ended": False,
    }


async def broadcast(app: web.Application, kind: str, card: dict[str, Any]) -> None:
    app[SEQ][0] += 1
    seq = app[SEQ][0]
    start = time.time_ns()
    for room in list(app[ROOMS].values()):
        for ws in list(room):
            try:
                data = {"v": 1, "type": kind, "seq": seq, "data": present(card)}
                await ws.send_bytes(msgpack.packb(data))
            except (ConnectionError, RuntimeError):
                room.discard(ws)
    end = time.time_ns()
    os.write(2, f"FANOUT-PUBLISH {seq} {start} {end} {kind}\n".encode())


async def room_socket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(compress=False, heartbeat=30.0, max_msg_size=4097)
    await ws.prepare(request)
    hello = await ws.receive()
    if hello.type != WSMsgType.BINARY or msgpack.unpackb(hello.data).get("type") != "hello":
        await ws.close(code=1008, message=b"send hello first")
        return ws
    app = request.app
    branch = request.match_info["branch"]
    snapshot = {
        "show": {"id": request.match_info["show"], "title": "naive", "status": "live"},
        "branch": {"id": branch, "name": branch, "is_open": True},
        "cards": [present(card) for card in app[CARDS].values()],
        "viewers": len(app[ROOMS][branch]) + 1,
    }
    await ws.send_bytes(
        msgpack.packb({"v": 1, "type": "snapshot", "seq": app[SEQ][0], "data": snapshot})
    )
    app[ROOMS][branch].add(ws)
    try:
        async for _ in ws:
            pass
    finally:
        app[ROOMS][branch].discard(ws)
    return ws


async def post_card(request: web.Request) -> web.Response:
    body = await request.json()
    card = {
        "id": f"card_{len(request.app[CARDS]) + 1}",
        "sku": body["sku"],
        "title": body.get("title", "Oolong 250 g"),
        "list_price": 1999,
        "price": body.get("price", 1999),
    }
    request.app[CARDS][card["id"]] = card
    await broadcast(request.app, "card.shown", card)
    return web.json_response(card, status=201)


async def patch_card(request: web.Request) -> web.Response:
    card = request.app[CARDS].get(request.match_info["card"])
    if card is None:
        raise web.HTTPNotFound()
    card.update({k: v for k, v in (await request.json()).items() if k in ("price", "title")})
    await broadcast(request.app, "card.updated", card)
    return web.json_response(card)


def make_app() -> web.Application:
    app = web.Application()
    app[ROOMS] = defaultdict(set)
    app[CARDS] = {}
    app[SEQ] = [0]
    app.router.add_get("/ws/shows/{show}/rooms/{branch}", room_socket)
    app.router.add_post("/api/shows/{show}/cards", post_card)
    app.router.add_patch("/api/shows/{show}/cards/{card}", patch_card)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    sock = socket.create_server((args.host, args.port))
    host, port = sock.getsockname()[:2]
    print(f"naive listening on http://{host}:{port}/", file=sys.stderr, flush=True)
    web.run_app(make_app(), sock=sock, print=None, access_log=None)


if __name__ == "__main__":
    main()
