"""Signing in over real HTTP: the page, wrong passwords, throttling, expiry, cookies,
CSRF, signing out and where the page goes next."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from commerce.access import Actor, Role
from commerce.ids import MerchantId
from streamserver.api.sessions import safe_next
from streamserver.app import make_app
from streamserver.auth import SESSION_COOKIE, digest
from streamserver.config import Config
from streamserver.ids import new_token
from streamserver.keys import SIGNIN_THROTTLE, STORE
from streamserver.store.port import Session
from tests.commerce_api import call, ok
from tests.conftest import Seeded, Server, seed
from tests.streamserver.test_throttle import FakeClock

PASSWORD = "correct horse battery"
EMAIL = "li@chali.example"


@dataclass
class Staff:
    seeded: Seeded
    operator: str  # emails
    host: str
    franchisee: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.seeded.operator_token}"}


async def add_user(
    server: Server, s: Seeded, email: str, role: str, branch: str | None = None
) -> None:
    body = {"username": email, "password": PASSWORD, "role": role}
    if branch is not None:
        body["branch"] = branch
    auth = {"Authorization": f"Bearer {s.operator_token}"}
    await ok(server, "POST", f"/api/merchants/{s.merchant}/users", body, auth)


@pytest.fixture
async def staff(server: Server, seeded: Seeded) -> Staff:
    await add_user(server, seeded, EMAIL, "hq_operator")
    await add_user(server, seeded, "host@chali.example", "host")
    await add_user(server, seeded, "xuhui@chali.example", "franchisee", seeded.branches[0])
    return Staff(seeded, EMAIL, "host@chali.example", "xuhui@chali.example")


async def sign_in(
    server: Server, email: str, password: str = PASSWORD, **extra: str
) -> aiohttp.ClientResponse:
    """POST /api/sessions; the response is read and released, headers kept."""
    async with server.http.post(
        server.url("/api/sessions"), json={"username": email, "password": password, **extra}
    ) as r:
        await r.read()
        return r


def cookie_of(response: aiohttp.ClientResponse) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={response.cookies[SESSION_COOKIE].value}"}


async def test_the_sign_in_page_serves_with_its_form_and_no_outside_links(server: Server) -> None:
    async with server.http.get(server.url("/signin")) as r:
        assert r.status == 200
        assert r.content_type == "text/html"
        page = await r.text()
    assert 'id="signin"' in page
    assert 'src="/static/js/signin.js"' in page
    assert 'autocomplete="current-password"' in page
    assert "https://" not in page
    async with server.http.get(server.url("/static/js/signin.js")) as r:
        assert r.status == 200
        script = await r.text()
    assert '"/api/sessions"' in script
    assert "https://" not in script


async def test_staff_sign_in_with_their_email_alone_and_land_on_their_home(
    server: Server, staff: Staff
) -> None:
    s = staff.seeded
    operator = await sign_in(server, staff.operator)
    assert operator.status == 201
    body = await operator.json()
    assert body["role"] == "hq_operator"
    assert body["merchant"] == s.merchant
    assert body["next"] == "/hq"
    franchisee = await (await sign_in(server, staff.franchisee)).json()
    assert franchisee["next"] == f"/branches/{s.branches[0]}/console"
    host = await (await sign_in(server, staff.host)).json()
    assert (host["role"], host["next"]) == ("host", f"/shows/{s.show}/host")
    me = await ok(server, "GET", "/api/sessions/me", headers=cookie_of(operator))
    assert (me["role"], me["home"]) == ("hq_operator", "/hq")


async def test_a_wrong_password_or_an_unknown_email_is_401(server: Server, staff: Staff) -> None:
    for email, password in ((staff.operator, "not the password"), ("zhao@x.example", PASSWORD)):
        status, body = await call(
            server, "POST", "/api/sessions", {"username": email, "password": password}
        )
        assert status == 401, body
        assert body["field"] == "password"
        assert body["message"] == "wrong email or password"
    status, body = await call(
        server,
        "POST",
        "/api/sessions",
        {"username": staff.operator, "password": PASSWORD, "merchant": "m_someoneelse"},
    )
    assert status == 401, body


async def test_a_host_session_hosts_its_merchants_shows_and_nothing_else(
    server: Server, staff: Staff
) -> None:
    s = staff.seeded
    host = cookie_of(await sign_in(server, staff.host))
    other = await seed(server, branch_names=("Elsewhere",))
    status, _ = await call(server, "POST", f"/api/shows/{other.show}/end", headers=host)
    assert status == 401
    status, _ = await call(server, "GET", f"/api/merchants/{s.merchant}/stock", headers=host)
    assert status == 401
    ended = await ok(server, "POST", f"/api/shows/{s.show}/end", headers=host)
    assert ended["status"] == "ended"
    later = await (await sign_in(server, staff.host)).json()
    assert later["next"] == "/"  # no show to host any more


async def test_an_email_at_several_merchants_asks_which_one(server: Server, staff: Staff) -> None:
    other = await seed(server, branch_names=("Elsewhere",))
    await add_user(server, other, staff.operator, "franchisee", other.branches[0])
    status, body = await call(
        server, "POST", "/api/sessions", {"username": staff.operator, "password": PASSWORD}
    )
    assert status == 409, body
    assert (body["error"], body["field"]) == ("choose_merchant", "merchant")
    assert sorted(m["id"] for m in body["merchants"]) == sorted(
        [staff.seeded.merchant, other.merchant]
    )
    chosen = await sign_in(server, staff.operator, merchant=other.merchant)
    assert (await chosen.json())["next"] == f"/branches/{other.branches[0]}/console"


async def test_five_failures_lock_the_email_with_retry_after_and_it_recovers(
    server: Server, staff: Staff
) -> None:
    clock = FakeClock()
    throttle = server.app[SIGNIN_THROTTLE]
    throttle.by_email.clock = clock
    throttle.by_address.clock = clock
    for _ in range(5):
        assert (await sign_in(server, staff.operator, "not the password")).status == 401
    locked = await sign_in(server, staff.operator)  # the right password waits too
    assert locked.status == 429
    retry_after = int(locked.headers["Retry-After"])
    assert retry_after == 30
    assert "try again in 30 s" in (await locked.json())["message"]
    assert (await sign_in(server, staff.franchisee)).status == 201  # other emails go on
    clock.now_s += retry_after - 1
    assert (await sign_in(server, staff.operator)).status == 429
    clock.now_s += 1
    assert (await sign_in(server, staff.operator)).status == 201
    for _ in range(4):  # the success forgave the earlier failures
        assert (await sign_in(server, staff.operator, "not the password")).status == 401
    assert (await sign_in(server, staff.operator)).status == 201


async def test_one_address_trying_many_emails_is_locked_too(server: Server, staff: Staff) -> None:
    for i in range(20):
        assert (await sign_in(server, f"guess{i}@x.example", "nope")).status == 401
    locked = await sign_in(server, staff.operator)
    assert locked.status == 429
    assert int(locked.headers["Retry-After"]) > 0


async def test_a_burst_of_concurrent_guesses_gets_only_five_tries(
    server: Server, staff: Staff
) -> None:
    answers = await asyncio.gather(
        *(sign_in(server, staff.operator, f"guess {i}") for i in range(12))
    )
    statuses = sorted(r.status for r in answers)
    assert statuses == [401] * 5 + [429] * 7


async def test_an_expired_session_is_refused_though_the_browser_still_sends_it(
    server: Server, staff: Staff
) -> None:
    s = staff.seeded
    token = new_token()
    actor = Actor(role=Role.HQ_OPERATOR, merchant=MerchantId(s.merchant))
    now_ms = time.time_ns() // 1_000_000
    await server.app[STORE].create_session(digest(token), Session(actor, now_ms - 1))
    cookie = {"Cookie": f"{SESSION_COOKIE}={token}"}
    for headers in (cookie, {"Authorization": f"Bearer {token}"}):
        status, _ = await call(server, "GET", "/api/sessions/me", headers=headers)
        assert status == 401
        status, _ = await call(server, "GET", f"/api/merchants/{s.merchant}", headers=headers)
        assert status == 401
    live = new_token()
    await server.app[STORE].create_session(digest(live), Session(actor, now_ms + 60_000))
    me = await ok(server, "GET", "/api/sessions/me", headers={"Cookie": f"{SESSION_COOKIE}={live}"})
    assert me["role"] == "hq_operator"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    # Shorter than the default, to see the setting reach both the cookie and the store.
    return Config(data_dir=tmp_path / "data", ice_hosts=("127.0.0.1",), staff_session_s=7200)


async def test_the_cookie_is_httponly_lax_site_wide_and_lives_as_long_as_the_session(
    server: Server, staff: Staff
) -> None:
    before_ms = time.time_ns() // 1_000_000
    response = await sign_in(server, staff.operator)
    header = response.headers.getall("Set-Cookie")
    assert len(header) == 1
    attributes = [part.strip().lower() for part in header[0].split(";")]
    assert attributes[0].startswith(f"{SESSION_COOKIE}=")
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/" in attributes
    assert "max-age=7200" in attributes
    assert "secure" not in attributes  # plain http here; see the https test
    body = await response.json()
    assert body["token"] == response.cookies[SESSION_COOKIE].value
    stored = await server.app[STORE].session(digest(body["token"]))
    assert stored is not None
    assert before_ms + 7200_000 <= stored.expires_at_ms == body["expires_at_ms"]
    assert stored.expires_at_ms <= time.time_ns() // 1_000_000 + 7200_000


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1: (key, cert)."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    files = ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            *subject,
            *files,
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


@pytest.fixture
async def https_server(config: Config, certificate: tuple[Path, Path]) -> AsyncIterator[Server]:
    """The app behind TLS, as a proxy-less https deployment runs it."""
    key, cert = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=str(cert))
    app = make_app(config)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server(ssl=server_tls)
    connector = aiohttp.TCPConnector(ssl=client_tls)
    async with aiohttp.ClientSession(connector=connector) as http:
        yield Server(str(test_server.make_url("")).rstrip("/"), app, http)
    await test_server.close()


async def test_over_https_the_cookie_is_secure(https_server: Server) -> None:
    server = https_server
    assert server.base.startswith("https://")
    s = await seed(server)
    await add_user(server, s, EMAIL, "hq_operator")
    response = await sign_in(server, EMAIL)
    assert response.status == 201
    attributes = [p.strip().lower() for p in response.headers["Set-Cookie"].split(";")]
    assert "secure" in attributes
    assert "httponly" in attributes


async def test_a_cookie_request_from_a_foreign_origin_may_not_change_anything(
    server: Server, staff: Staff
) -> None:
    s = staff.seeded
    cookie = cookie_of(await sign_in(server, staff.operator))
    branches = f"/api/merchants/{s.merchant}/branches"
    foreign = {**cookie, "Origin": "http://evil.example"}
    status, body = await call(server, "POST", branches, {"name": "Fake"}, foreign)
    assert status == 403, body
    assert body["field"] == "Origin"
    for origin in ("null", server.base.replace("127.0.0.1", "localhost")):
        status, _ = await call(
            server, "POST", branches, {"name": "Fake"}, {**cookie, "Origin": origin}
        )
        assert status == 403
    listed = await ok(server, "GET", branches, headers=foreign)  # reading is not changing
    assert len(listed["branches"]) == 2
    own = {**cookie, "Origin": server.base}
    created = await ok(server, "POST", branches, {"name": "Minhang"}, own)
    assert created["name"] == "Minhang"
    # A bearer token is not sent by browsers on their own: no CSRF to fear.
    with_bearer = {**staff.bearer, "Origin": "http://erp.example"}
    await ok(server, "POST", branches, {"name": "Songjiang"}, with_bearer)
    # Signing someone in from another site (login CSRF) is refused as well.
    status, _ = await call(
        server,
        "POST",
        "/api/sessions",
        {"username": staff.operator, "password": PASSWORD},
        {"Origin": "http://evil.example"},
    )
    assert status == 403


async def test_signing_out_revokes_the_session_and_clears_the_cookie(
    server: Server, staff: Staff
) -> None:
    signed_in = await sign_in(server, staff.franchisee)
    token = signed_in.cookies[SESSION_COOKIE].value
    cookie = cookie_of(signed_in)
    await ok(server, "GET", "/api/sessions/me", headers=cookie)
    async with server.http.delete(
        server.url("/api/sessions/me"), headers={**cookie, "Origin": server.base}
    ) as r:
        assert r.status == 200
        header = r.headers["Set-Cookie"]
    attributes = [p.strip().lower() for p in header.split(";")]
    assert attributes[0] == f'{SESSION_COOKIE}=""'
    assert "max-age=0" in attributes
    assert "path=/" in attributes
    for headers in (cookie, {"Authorization": f"Bearer {token}"}):
        status, _ = await call(server, "GET", "/api/sessions/me", headers=headers)
        assert status == 401


@pytest.mark.parametrize(
    "value",
    [
        "//evil.example/hq",
        "https://evil.example/hq",
        "http:/evil.example",
        "javascript:alert(1)",
        "/\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "evil.example/hq",
        "",
        "/signin?next=/hq",
        "/" + "a" * 2000,
        None,
        42,
    ],
)
def test_next_never_leaves_the_site(value: object) -> None:
    assert safe_next(value) is None


def test_next_may_be_any_path_here() -> None:
    for path in ("/hq", "/branches/b_1/console?tab=queue#orders", "/shows/s_1/host"):
        assert safe_next(path) == path


async def test_sign_in_goes_to_next_only_when_it_stays_on_the_site(
    server: Server, staff: Staff
) -> None:
    s = staff.seeded
    host_page = f"/shows/{s.show}/host"
    there = await sign_in(server, staff.operator, next=host_page)
    assert (await there.json())["next"] == host_page
    away = await sign_in(server, staff.operator, next="//evil.example/hq")
    assert (await away.json())["next"] == "/hq"
