"""`lianbo init` and `lianbo demo` as an operator runs them: real processes on a fresh
data dir, then `lianbo serve` on it accepting the credentials they printed."""

from __future__ import annotations

import asyncio
import re
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.commerce_api import call, ok
from tests.conftest import ServerProcess, launch_server

PASSWORD = "osmanthus-and-oolong"


async def lianbo(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    """Run the `lianbo` command; (exit status, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "streamserver.cli",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate(stdin or b"")
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def stopped_cleanly(server: ServerProcess) -> None:
    assert await server.stop() == 0, server.log
    assert not any("Traceback" in line for line in server.log), "".join(server.log)


async def sign_in(server: ServerProcess, email: str, password: str) -> dict[str, str]:
    session = await ok(server, "POST", "/api/sessions", {"username": email, "password": password})
    return session


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_init_creates_the_merchant_and_operator_once_and_serve_accepts_them(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    data = tmp_path / "data"
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    args = ["init", "--data-dir", str(data), "--merchant-name", "Cha Li Tea"]
    args += ["--email", "Li@ChaLi.example", "--password-file", str(password_file)]
    status, out, err = await lianbo(*args)
    assert status == 0, err
    assert f"lianbo serve --data-dir {data}" in out
    assert "/signin" in out
    token = re.search(r"Bearer (\S+)", out)
    assert token, out
    merchant = re.search(r"\((m_\w+)\)", out)
    assert merchant, out

    again, out_again, err_again = await lianbo(*args)
    assert again != 0
    assert "li@chali.example has an account already" in err_again
    assert "Bearer" not in out_again

    server = await launch_server(data, http, "--staff-session-hours", "2")
    try:
        credentials = {"username": "li@chali.example", "password": PASSWORD}
        async with http.post(server.url("/api/sessions"), json=credentials) as r:
            assert r.status == 201, await r.text()
            assert "Max-Age=7200" in r.headers["Set-Cookie"]
        session = await sign_in(server, "li@chali.example", PASSWORD)  # one account, not two
        assert (session["role"], session["next"]) == ("hq_operator", "/hq")
        assert session["merchant"] == merchant.group(1)
        found = await ok(
            server, "GET", f"/api/merchants/{merchant.group(1)}", headers=bearer(session["token"])
        )
        assert found["merchant"]["name"] == "Cha Li Tea"
        by_token = await ok(
            server, "GET", f"/api/merchants/{merchant.group(1)}", headers=bearer(token.group(1))
        )
        assert by_token["merchant"]["id"] == merchant.group(1)
        status, _ = await call(
            server, "POST", "/api/sessions", {"username": "li@chali.example", "password": "nope"}
        )
        assert status == 401
    finally:
        await stopped_cleanly(server)


async def test_serve_refuses_a_session_length_of_nothing(tmp_path: Path) -> None:
    status, _, err = await lianbo(
        "serve", "--data-dir", str(tmp_path), "--staff-session-hours", "0"
    )
    assert status != 0
    assert "--staff-session-hours" in err


async def test_init_refuses_bad_input_and_creates_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    base = ["init", "--data-dir", str(data), "--merchant-name", "Cha Li Tea"]
    status, _, err = await lianbo(
        *base, "--email", "not-an-email", "--password-file", "-", stdin=b"x" * 12
    )
    assert status != 0
    assert "not an email address" in err
    status, _, err = await lianbo(
        *base, "--email", "li@chali.example", "--password-file", "-", stdin=b"short\n"
    )
    assert status != 0
    assert "at least 10 characters" in err
    status, _, err = await lianbo(*base, "--email", "li@chali.example")  # stdin is no terminal
    assert status != 0
    assert "--password-file" in err
    assert not data.exists()


async def test_init_works_on_redis_too(
    tmp_path: Path, http: aiohttp.ClientSession, redis_url: str
) -> None:
    email = f"ops-{uuid.uuid4().hex[:12]}@chali.example"  # the test Redis may be shared
    args = ["init", "--redis-url", redis_url, "--merchant-name", "Cha Li Tea", "--email", email]
    status, out, err = await lianbo(*args, "--password-file", "-", stdin=PASSWORD.encode())
    assert status == 0, err
    assert f"--redis-url {redis_url}" in out
    server = await launch_server(tmp_path / "data", http, "--redis-url", redis_url)
    try:
        session = await sign_in(server, email, PASSWORD)
        assert session["role"] == "hq_operator"
    finally:
        await stopped_cleanly(server)


CREDENTIAL = re.compile(r"^  (HQ operator|host|franchisee)\s+(\S+@\S+)\s+(\S+)", re.MULTILINE)


async def test_demo_seeds_a_brand_whose_printed_staff_can_run_a_show(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    data = tmp_path / "data"
    status, out, err = await lianbo("demo", "--data-dir", str(data))
    assert status == 0, err
    people = CREDENTIAL.findall(out)
    roles = [role for role, _, _ in people]
    assert roles == ["HQ operator", "host"] + ["franchisee"] * 4, out
    rooms = re.findall(r"/shows/(s_\w+)/rooms/(b_\w+)", out)
    assert len(rooms) == 4
    show = rooms[0][0]
    host_token = re.search(rf"/shows/{show}/host#token=(\S+)", out)
    assert host_token, out

    again, _, err_again = await lianbo("demo", "--data-dir", str(data))
    assert again != 0
    assert "exists already" in err_again

    server = await launch_server(data, http)
    try:
        sessions = {email: await sign_in(server, email, password) for _, email, password in people}
        operator, host, *franchisees = sessions.values()
        merchant = operator["merchant"]
        assert operator["next"] == "/hq"
        assert host["next"] == f"/shows/{show}/host"
        landed = sorted(f["next"] for f in franchisees)
        assert landed == sorted(f"/branches/{branch}/console" for _, branch in rooms)

        shown = await ok(server, "GET", f"/api/shows/{show}")
        assert shown["status"] == "scheduled"
        assert {r["branch"]["id"] for r in shown["rooms"]} == {b for _, b in rooms}
        assert all(r["branch"]["lat"] and r["branch"]["address"] for r in shown["rooms"])
        terms = await ok(
            server, "GET", f"/api/merchants/{merchant}/terms", headers=bearer(operator["token"])
        )
        assert (terms["commission_rate_bp"], terms["cashback_rate_bp"]) == (1000, 300)
        stock = await ok(
            server, "GET", f"/api/merchants/{merchant}/stock", headers=bearer(operator["token"])
        )
        assert {row["branch"] for row in stock["stock"] if row["available"] > 0} == {
            b for _, b in rooms
        }
        catalog = await ok(server, "GET", f"/api/merchants/{merchant}/catalog")
        assert len(catalog["skus"]) == 5

        # The host pins a card; a franchisee sees its own branch's queue.
        card = await ok(
            server,
            "POST",
            f"/api/shows/{show}/cards",
            {"sku": catalog["skus"][0]["id"], "price": 5900},
            bearer(host["token"]),
        )
        assert card["price"] == 5900
        first = franchisees[0]
        await ok(
            server, "GET", f"/api/branches/{first['branch']}/queue", headers=bearer(first["token"])
        )
        other_branch = next(b for _, b in rooms if b != first["branch"])
        status, _ = await call(
            server, "GET", f"/api/branches/{other_branch}/queue", headers=bearer(first["token"])
        )
        assert status == 401
        # The printed host token is the WHIP stream key of the show.
        status, _ = await call(
            server,
            "POST",
            f"/api/shows/{show}/cards",
            {"sku": catalog["skus"][1]["id"]},
            bearer(host_token.group(1)),
        )
        assert status == 201
    finally:
        await stopped_cleanly(server)
