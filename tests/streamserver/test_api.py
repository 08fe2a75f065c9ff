"""The JSON API: merchants, branches, shows, branch rooms; bad input; who may call what."""

from __future__ import annotations

import pytest

from commerce.ids import MerchantId, ShowId
from streamserver.keys import CONFIG
from streamserver.store.sqlite import SqliteStore
from tests.conftest import Seeded, Server, seed


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_show_has_a_room_per_branch_including_branches_opened_later(
    server: Server, seeded: Seeded
) -> None:
    url = server.url(f"/api/merchants/{seeded.merchant}/branches")
    async with server.http.post(
        url,
        json={"name": "Jing'an", "address": "1 Nanjing Rd", "lat": 31.23, "lng": 121.47},
        headers=bearer(seeded.operator_token),
    ) as r:
        assert r.status == 201
        late = await r.json()
    async with server.http.get(server.url(f"/api/shows/{seeded.show}")) as r:
        show = await r.json()
    assert show["status"] == "scheduled"
    rooms = {room["branch"]["id"]: room for room in show["rooms"]}
    assert list(rooms) == [*seeded.branches, late["id"]]
    room = rooms[late["id"]]
    assert room["url"] == f"/shows/{seeded.show}/rooms/{late['id']}"
    assert room["branch"]["lat"] == 31.23
    async with server.http.get(server.url(room["url"])) as r:
        assert r.status == 200
        assert "text/html" in r.headers["Content-Type"]
    async with server.http.get(server.url(f"/api/shows/{seeded.show}/rooms/{late['id']}")) as r:
        assert (await r.json())["branch"]["name"] == "Jing'an"


async def test_another_merchants_branch_has_no_room_in_the_show(
    server: Server, seeded: Seeded
) -> None:
    other = await seed(server, branch_names=("Elsewhere",))
    room = f"/api/shows/{seeded.show}/rooms/{other.branches[0]}"
    async with server.http.get(server.url(room)) as r:
        assert r.status == 404
    async with server.http.get(server.url(f"/api/shows/{seeded.show}/rooms/b_nosuchbranch00")) as r:
        assert r.status == 404
    async with server.http.get(server.url("/api/shows/s_nosuchshow000")) as r:
        assert r.status == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": 7}, "name"),
        ({"name": "x" * 500}, "name"),
        ({"name": "Ok", "lat": "north"}, "lat"),
        ({"name": "Ok", "lat": 91}, "lat"),
        ({"name": "Ok", "lng": -180.5}, "lng"),
        ({"name": "Ok", "address": ["a"]}, "address"),
    ],
)
async def test_bad_branch_input_is_refused_naming_the_field(
    server: Server, seeded: Seeded, body: dict[str, object], field: str
) -> None:
    url = server.url(f"/api/merchants/{seeded.merchant}/branches")
    async with server.http.post(url, json=body, headers=bearer(seeded.operator_token)) as r:
        assert r.status == 400
        assert (await r.json())["field"] == field


@pytest.mark.parametrize(
    "body", [b"{", b"[1, 2]", b"\xff\xfe", b'"name"', b'{"name": "Ok", "lng": Infinity}']
)
async def test_a_body_that_is_not_a_json_object_is_a_400(server: Server, body: bytes) -> None:
    async with server.http.post(server.url("/api/merchants"), data=body) as r:
        assert r.status == 400
        assert (await r.json())["error"] == "bad_input"
    async with server.http.get(server.url("/api/health")) as r:
        assert r.status == 200


async def test_an_oversize_body_is_a_413(server: Server) -> None:
    async with server.http.post(server.url("/api/merchants"), data=b" " * 70_000) as r:
        assert r.status == 413


async def test_the_host_can_end_the_show_once(server: Server, seeded: Seeded) -> None:
    url = server.url(f"/api/shows/{seeded.show}/end")
    async with server.http.post(url, headers=bearer(seeded.host_token)) as r:
        assert r.status == 200
        assert (await r.json())["status"] == "ended"
    async with server.http.post(url, headers=bearer(seeded.operator_token)) as r:
        assert r.status == 409


async def test_what_was_created_is_in_the_sqlite_file(server: Server, seeded: Seeded) -> None:
    reopened = SqliteStore(server.app[CONFIG].data_dir / "lianbo.sqlite3")
    await reopened.open()
    try:
        branches = await reopened.branches(MerchantId(seeded.merchant))
        assert [b.id for b in branches] == seeded.branches
        assert await reopened.is_host_token(ShowId(seeded.show), seeded.host_token)
        assert not await reopened.is_host_token(ShowId(seeded.show), seeded.operator_token)
    finally:
        await reopened.close()
