"""`lianbo serve`: parse flags into a Config and run the app until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import socket
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from streamserver.app import make_app
from streamserver.config import Config, parse_ice_server

logger = logging.getLogger("lianbo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lianbo", description="lianbo live-commerce server")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (0: any free)")
    serve.add_argument("--data-dir", type=Path, default=Path("data"), help="where SQLite lives")
    serve.add_argument("--redis-url", help="redis://host:port/db to share state between nodes")
    serve.add_argument(
        "--ice-server",
        action="append",
        default=[],
        metavar="URL",
        help="STUN/TURN server for peers, e.g. stun:stun.example.net or "
        "turn:user:secret@turn.example.net:3478 (repeatable; none by default)",
    )
    serve.add_argument(
        "--ice-host",
        action="append",
        default=[],
        metavar="ADDR",
        help="gather ICE host candidates only on this address (repeatable; default: all "
        "interfaces but 127.0.0.1; give 127.0.0.1 for a loopback-only setup)",
    )
    serve.add_argument(
        "--sqlite-synchronous",
        default="FULL",
        choices=["FULL", "NORMAL"],
        help="FULL: every acknowledged order is on disk; NORMAL: faster, survives a "
        "process crash but not a power loss",
    )
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    return parser


def config_from(args: argparse.Namespace) -> Config:
    for url in args.ice_server:
        parse_ice_server(url)  # fail at start, not at the first viewer
    return Config(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        redis_url=args.redis_url,
        ice_servers=tuple(args.ice_server),
        ice_hosts=tuple(args.ice_host),
        sqlite_synchronous=args.sqlite_synchronous,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from(args)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    # aioice logs every failed connectivity check at INFO; that is noise for an operator.
    logging.getLogger("aioice").setLevel(logging.WARNING)
    sock = socket.create_server((config.host, config.port), reuse_port=False)
    host, port = sock.getsockname()[:2]
    store = f"Redis at {config.redis_url}" if config.redis_url else f"SQLite in {config.data_dir}"
    logger.info("lianbo listening on http://%s:%d/ (%s)", host, port, store)
    # run_app turns SIGINT and SIGTERM into a graceful exit: cleanup contexts close
    # every peer and the store before the process ends.
    web.run_app(make_app(config), sock=sock, print=None, access_log=None)
    logger.info("lianbo stopped")


if __name__ == "__main__":
    main()
