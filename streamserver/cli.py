"""The `lianbo` command.

- `serve`: parse flags into a Config and run the app until SIGINT/SIGTERM;
- `init`: create a merchant and its first HQ operator in the store, no server running;
- `demo`: seed a demo brand (streamserver/demo.py) and print how to sign in.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import logging
import shlex
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Final, TypeVar

from aiohttp import web

from commerce.access import Role
from streamserver import demo, provisioning
from streamserver.api.sessions import PASSWORD_LENGTH_MIN, USERNAME_LENGTH_MAX
from streamserver.app import make_app, open_store
from streamserver.config import Config, parse_ice_server
from streamserver.store.port import Store

logger = logging.getLogger("lianbo")
T = TypeVar("T")
# Where `lianbo serve` listens unless told otherwise: the address the printed links use.
DEFAULT_BASE: Final = "http://127.0.0.1:8080"
MERCHANT_NAME_LENGTH_MAX: Final = 120


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
    serve.add_argument(
        "--staff-session-hours",
        type=float,
        default=12.0,
        help="how long a staff sign-in lasts before the server refuses it (default 12)",
    )
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])

    init = commands.add_parser(
        "init", help="create a merchant and its first HQ operator (no server running)"
    )
    _store_flags(init)
    init.add_argument("--merchant-name", required=True, help="the brand's name")
    init.add_argument("--email", required=True, help="the HQ operator's email (signs in with it)")
    init.add_argument(
        "--password-file",
        type=Path,
        help="read the password from this file's first line ('-': standard input); "
        "without it, prompt on the terminal",
    )
    demo_parser = commands.add_parser(
        "demo", help="seed a demo brand with branches, products, stock, a show and staff"
    )
    _store_flags(demo_parser)
    return parser


def _store_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="where SQLite lives")
    parser.add_argument("--redis-url", help="redis://host:port/db, if the server uses Redis")


def config_from(args: argparse.Namespace) -> Config:
    for url in args.ice_server:
        parse_ice_server(url)  # fail at start, not at the first viewer
    if not 0 < args.staff_session_hours <= 24 * 365:
        raise ValueError("--staff-session-hours must be more than 0 and at most a year")
    return Config(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        redis_url=args.redis_url,
        ice_servers=tuple(args.ice_server),
        ice_hosts=tuple(args.ice_host),
        sqlite_synchronous=args.sqlite_synchronous,
        staff_session_s=max(1, round(args.staff_session_hours * 3600)),
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "init":
        init(args)
        return
    if args.command == "demo":
        seed_demo(args)
        return
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
    app = make_app(config)
    app.on_startup.append(_freeze_startup_objects)
    web.run_app(app, sock=sock, print=None, access_log=None)
    logger.info("lianbo stopped")


async def _freeze_startup_objects(app: web.Application) -> None:
    """What exists once the app has started (the imported libraries above all) lives as
    long as the process: keep the collector's full passes from scanning it again and
    again. A flash sale measured 5,000 -> 5,550 purchases/s on Redis and p99 52 -> 34 ms
    (BENCHMARKS.md). Raising the thresholds as well gained little more and let the relay's cyclic
    peer-connection garbage pile up (tests/e2e/test_lifecycle.py measures it)."""
    gc.freeze()


def _with_store(args: argparse.Namespace, work: Callable[[Store], Awaitable[T]]) -> T:
    async def run() -> T:
        store = open_store(Config(data_dir=args.data_dir, redis_url=args.redis_url))
        await store.open()
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def _serve_command(args: argparse.Namespace) -> str:
    command = ["lianbo", "serve", "--data-dir", str(args.data_dir)]
    if args.redis_url:
        command += ["--redis-url", args.redis_url]
    return shlex.join(command)


def read_password(path: Path | None, email: str) -> str:
    """The first line of `path` (or of stdin for '-'), else typed twice at a prompt."""
    if path is not None:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
        lines = text.splitlines()
        return lines[0] if lines else ""
    if not sys.stdin.isatty():
        raise ValueError("no terminal to ask for the password on: give --password-file")
    password = getpass.getpass(f"Password for {email}: ")
    if getpass.getpass("The same password again: ") != password:
        raise ValueError("the two passwords differ")
    return password


def checked_email(value: str) -> str:
    email = value.strip().lower()  # staff type it at sign-in; keep one spelling
    local, at, domain = email.partition("@")
    if not (local and at and "." in domain) or any(c.isspace() for c in email):
        raise ValueError(f"not an email address: {value!r}")
    if len(email) > USERNAME_LENGTH_MAX:
        raise ValueError(f"an email address has at most {USERNAME_LENGTH_MAX} characters")
    return email


def init(args: argparse.Namespace) -> None:
    """`lianbo init`: a merchant and its first HQ operator, straight into the store."""
    name = args.merchant_name.strip()
    try:
        if not name or len(name) > MERCHANT_NAME_LENGTH_MAX:
            raise ValueError(f"--merchant-name needs 1 to {MERCHANT_NAME_LENGTH_MAX} characters")
        email = checked_email(args.email)
        password = read_password(args.password_file, email)
    except (OSError, ValueError) as exc:
        sys.exit(f"lianbo init: {exc}")
    if len(password) < PASSWORD_LENGTH_MIN:
        sys.exit(f"lianbo init: the password needs at least {PASSWORD_LENGTH_MIN} characters")

    async def create(store: Store) -> tuple[str, str] | None:
        if await store.users_named(email):
            return None  # run twice: the first run's merchant stays the only one
        merchant, token = await provisioning.create_merchant(store, name)
        user = await provisioning.create_user(store, merchant.id, email, password, Role.HQ_OPERATOR)
        assert user is not None, "a new merchant has no users yet"
        return merchant.id, token

    created = _with_store(args, create)
    if created is None:
        sys.exit(
            f"lianbo init: {email} has an account already; sign in with it at "
            f"{DEFAULT_BASE}/signin (nothing was created)"
        )
    merchant_id, token = created
    print(
        f"""Created the merchant {name!r} ({merchant_id}) and its HQ operator {email}.

Next:
  1. Start the server:   {_serve_command(args)}
  2. Sign in:            {DEFAULT_BASE}/signin  as {email} with the password you chose
  3. In the HQ console, add branches, products and stock, then create a show.

API clients (an ERP, scripts) may use the operator token, shown only this once:
  Authorization: Bearer {token}"""
    )


def seed_demo(args: argparse.Namespace) -> None:
    """`lianbo demo`: the demo brand, and how to sign in to it."""
    try:
        seeded = _with_store(args, demo.seed_demo)
    except demo.AlreadySeeded:
        sys.exit(
            f"lianbo demo: the demo brand exists already in this store ({demo.OPERATOR_EMAIL}); "
            "use its printed passwords, or another --data-dir"
        )
    show = seeded.show.id
    roles = {Role.HQ_OPERATOR: "HQ operator", Role.HOST: "host", Role.FRANCHISEE: "franchisee"}
    print(
        f"""Seeded the brand {seeded.merchant.name!r} ({seeded.merchant.id}) with \
{len(seeded.branches)} branches,
{len(demo.PRODUCTS)} products in stock, commission and cashback terms, and the show \
{seeded.show.title!r}.

Start the server:  {_serve_command(args)}
Sign in at {DEFAULT_BASE}/signin with (passwords shown only now):"""
    )
    for person in seeded.credentials:
        where = "" if person.branch is None else f"  ({person.branch.name})"
        print(f"  {roles[person.role]:<12} {person.email:<28} {person.password}{where}")
    print(
        f"""
Host studio (keep the link private): {DEFAULT_BASE}/shows/{show}/host#token={seeded.host_token}
OBS or another WHIP encoder:          {DEFAULT_BASE}/whip/{show}  bearer {seeded.host_token}
Branch rooms (share with shoppers):"""
    )
    for branch in seeded.branches:
        print(f"  {branch.name:<16} {DEFAULT_BASE}/shows/{show}/rooms/{branch.id}")
    print(f"\nOperator API token: {seeded.operator_token}")


if __name__ == "__main__":
    main()
