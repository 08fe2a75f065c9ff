"""Staff sign in by email alone: a store finds a user of that name at any merchant."""

from __future__ import annotations

from commerce.access import Role
from streamserver.store.port import User
from tests.contract.world import World, new_id


async def test_users_are_found_by_name_across_merchants(world: World) -> None:
    store = world.store
    other = await World.create(store)
    email = new_id("li.") + "@example.cn"  # Redis may be shared: a name no other test uses
    at_first = User(
        merchant=world.merchant,
        username=email,
        role=Role.HQ_OPERATOR,
        branch=None,
        password_hash="h1",
    )
    at_other = User(
        merchant=other.merchant,
        username=email,
        role=Role.FRANCHISEE,
        branch=other.near.id,
        password_hash="h2",
    )
    assert await store.users_named(email) == []
    assert await store.create_user(at_first)
    assert await store.users_named(email) == [at_first]
    assert await store.create_user(at_other)
    assert not await store.create_user(at_other)  # taken: still listed once
    found = await store.users_named(email)
    assert sorted(found, key=lambda u: u.merchant) == sorted(
        [at_first, at_other], key=lambda u: u.merchant
    )
    assert len(await store.users_named(email, limit=1)) == 1
    assert await store.users_named(email.upper()) == []
