"""Merchants, branches, shows, tokens, terms and the catalog: the same on every store."""

from __future__ import annotations

import hashlib
from dataclasses import replace

from commerce import orders
from commerce.access import Actor, Role
from commerce.cards import pin
from commerce.catalog import Branch, CashbackFunder, Merchant, Sku, Terms
from commerce.ids import Amount, BranchId, CardId, MerchantId, ShopperId, ShowId, SkuId
from commerce.pricing import Offer
from commerce.shows import Show, ShowStatus
from streamserver.store.port import Applied, Durability, Session, Store, User
from tests.contract.world import World, new_id, now_ms


async def test_a_merchant_is_found_by_id_and_its_operator_token(store: Store) -> None:
    merchant = MerchantId(new_id("m_"))
    await store.create_merchant(Merchant(merchant, "Cha Li"), "secret-token")
    assert await store.merchant(merchant) == Merchant(merchant, "Cha Li")
    assert await store.merchant(MerchantId(new_id("m_"))) is None
    assert await store.is_operator_token(merchant, "secret-token")
    assert not await store.is_operator_token(merchant, "secret-tokeN")
    assert not await store.is_operator_token(MerchantId(new_id("m_")), "secret-token")


async def test_terms_default_until_set(store: Store) -> None:
    merchant = MerchantId(new_id("m_"))
    await store.create_merchant(Merchant(merchant, "Cha Li"), "t")
    assert await store.terms(merchant) == Terms()
    terms = Terms(
        commission_rate_bp=800,
        cashback_rate_bp=300,
        cashback_funder=CashbackFunder.SELLING_BRANCH,
        pickup_hold_s=600,
        idempotency_keep_s=86_400,
    )
    await store.set_terms(merchant, terms)
    assert await store.terms(merchant) == terms


async def test_branches_are_listed_in_the_order_they_were_created(world: World) -> None:
    store = world.store
    third = Branch(id=BranchId(new_id("b_")), merchant=world.merchant, name="Pudong", is_open=False)
    await store.create_branch(third)
    assert await store.branches(world.merchant) == [world.near, world.far, third]
    assert await store.branch(third.id) == third
    assert await store.branch(BranchId(new_id("b_"))) is None
    moved = Branch(
        id=third.id,
        merchant=world.merchant,
        name="Pudong 2",
        address="8 Century Ave",
        lat=31.2,
        lng=121.5,
        is_open=True,
    )
    await store.update_branch(moved)
    assert await store.branch(third.id) == moved
    assert (await store.branches(world.merchant))[2] == moved


async def test_a_show_keeps_its_status_and_host_token(world: World) -> None:
    store = world.store
    show = Show(id=ShowId(new_id("s_")), merchant=world.merchant, title="Autumn launch")
    await store.create_show(show, "host-token")
    assert await store.show(show.id) == show
    assert await store.show(ShowId(new_id("s_"))) is None
    assert await store.is_host_token(show.id, "host-token")
    assert not await store.is_host_token(show.id, "another")
    assert not await store.is_host_token(ShowId(new_id("s_")), "host-token")
    await store.set_show_status(show.id, ShowStatus.LIVE)
    assert (await store.show(show.id)) == Show(
        id=show.id, merchant=world.merchant, title="Autumn launch", status=ShowStatus.LIVE
    )


async def test_a_merchants_shows_are_listed_newest_first_with_their_status(
    world: World,
) -> None:
    store = world.store
    titles = ("Spring", "Summer", "Autumn")
    shows = [Show(id=ShowId(new_id("s_")), merchant=world.merchant, title=t) for t in titles]
    for show in shows:
        await store.create_show(show, "t")
    await store.set_show_status(shows[1].id, ShowStatus.ENDED)
    listed = await store.shows(world.merchant)
    assert [s.title for s in listed] == ["Autumn", "Summer", "Spring"]
    assert listed[1] == Show(
        id=shows[1].id, merchant=world.merchant, title="Summer", status=ShowStatus.ENDED
    )
    assert await store.shows(MerchantId(new_id("m_"))) == []


async def test_live_shows_are_paused_when_the_server_starts_again(world: World) -> None:
    store = world.store
    live = Show(id=ShowId(new_id("s_")), merchant=world.merchant, title="Live")
    ended = Show(id=ShowId(new_id("s_")), merchant=world.merchant, title="Ended")
    for show in (live, ended):
        await store.create_show(show, "t")
    await store.set_show_status(live.id, ShowStatus.LIVE)
    await store.set_show_status(ended.id, ShowStatus.ENDED)
    assert await store.pause_live_shows() >= 1  # other tests' shows may share the store
    assert (await store.show(live.id)) is not None
    assert (await store.show(live.id)).status is ShowStatus.PAUSED  # type: ignore[union-attr]
    assert (await store.show(ended.id)).status is ShowStatus.ENDED  # type: ignore[union-attr]


async def test_skus_are_listed_in_the_order_they_were_first_put(world: World) -> None:
    store = world.store
    assert await store.skus(world.merchant) == [world.tea, world.cake]
    cheaper = Sku(
        id=world.tea.id,
        product=world.tea.product,
        merchant=world.merchant,
        name="Tea (L)",
        price=Amount(1200),
    )
    await store.put_sku(cheaper)
    assert await store.skus(world.merchant) == [cheaper, world.cake]


async def test_offers_are_put_replaced_and_removed(world: World) -> None:
    store = world.store
    assert await store.offers(world.merchant) == {}
    flash = Offer(
        sku=world.tea.id, price=Amount(990), ends_at_ms=1_900_000_000_000, limit_per_shopper=2
    )
    plain = Offer(sku=world.cake.id, price=Amount(2500))
    await store.put_offer(world.merchant, flash)
    await store.put_offer(world.merchant, plain)
    assert await store.offers(world.merchant) == {world.tea.id: flash, world.cake.id: plain}
    cheaper = Offer(sku=world.tea.id, price=Amount(890), ends_at_ms=1_900_000_000_000)
    await store.put_offer(world.merchant, cheaper)
    await store.remove_offer(world.merchant, world.cake.id)
    assert await store.offers(world.merchant) == {world.tea.id: cheaper}


async def test_the_ordering_view_holds_what_the_core_needs(world: World) -> None:
    store = world.store
    offer = Offer(sku=world.tea.id, price=Amount(990), limit_per_shopper=3)
    await store.put_offer(world.merchant, offer)
    await world.receive(world.near, world.tea, 5)
    await world.receive(world.far, world.tea, 2)
    shopper = ShopperId(new_id("u_"))
    await world.place(world.command(shopper, [(world.tea, 2)]))
    unknown = SkuId(new_id("k_"))
    view = await store.ordering_view(
        world.merchant, world.near.id, shopper, [world.tea.id, world.cake.id, unknown]
    )
    assert view is not None
    assert view.terms == await store.terms(world.merchant)
    assert view.selling == world.near
    assert view.branches == (world.near, world.far)
    assert dict(view.skus) == {world.tea.id: world.tea, world.cake.id: world.cake}
    assert dict(view.offers) == {world.tea.id: offer}
    assert {k: v for k, v in view.available.items() if v} == {
        (world.near.id, world.tea.id): 3,
        (world.far.id, world.tea.id): 2,
    }
    assert {k: v for k, v in view.bought.items() if v} == {world.tea.id: 2}


async def test_the_ordering_view_follows_every_acknowledged_write(world: World) -> None:
    """Read once (an adapter may keep what it read), then change everything a view
    holds: the next view shows every change, and a cancel gives the units back."""
    store, tea = world.store, world.tea
    shopper = ShopperId(new_id("u_"))
    await store.put_offer(world.merchant, Offer(sku=tea.id, price=Amount(990), limit_per_shopper=5))
    before = await store.ordering_view(world.merchant, world.near.id, shopper, [tea.id])
    assert before is not None
    assert before.bought == {}

    await world.receive(world.near, tea, 4)
    await world.receive(world.far, tea, 1)
    placed = await world.place(world.command(shopper, [(tea, 3)]))
    limited = Offer(sku=tea.id, price=Amount(880), limit_per_shopper=4)
    await store.put_offer(world.merchant, limited)
    await store.set_terms(world.merchant, Terms(commission_rate_bp=1234, cashback_rate_bp=0))
    await store.update_branch(replace(world.far, is_open=False))
    third = Branch(id=BranchId(new_id("b_")), merchant=world.merchant, name="Pudong")
    await store.create_branch(third)
    await store.put_sku(replace(tea, price=Amount(1600)))

    view = await store.ordering_view(world.merchant, world.near.id, shopper, [tea.id])
    assert view is not None
    assert view.offers == {tea.id: limited}
    assert view.terms == Terms(commission_rate_bp=1234, cashback_rate_bp=0)
    assert [b.id for b in view.branches] == [world.near.id, world.far.id, third.id]
    assert view.branches[1].is_open is False
    assert view.skus[tea.id].price == 1600
    assert view.available[world.near.id, tea.id] == 1
    assert view.available[world.far.id, tea.id] == 1
    assert view.bought == {tea.id: 3}

    assert isinstance(await world.act(orders.cancel, placed.id), Applied)
    after = await store.ordering_view(world.merchant, world.near.id, shopper, [tea.id])
    assert after is not None
    assert after.available[world.near.id, tea.id] == 4
    assert after.bought.get(tea.id, 0) == 0


async def test_there_is_no_ordering_view_of_another_merchants_branch(
    world: World, store: Store
) -> None:
    other = await World.create(store)
    shopper = ShopperId(new_id("u_"))
    assert await store.ordering_view(world.merchant, other.near.id, shopper, []) is None
    assert await store.ordering_view(world.merchant, BranchId(new_id("b_")), shopper, []) is None


async def test_the_store_says_whether_an_acknowledged_order_survives_a_crash(
    store: Store, adapter: str, owns_redis: bool
) -> None:
    durability = await store.durability()
    assert isinstance(durability, Durability)
    assert durability.detail
    if adapter == "redis" and owns_redis:  # the suite's Redis runs without persistence
        assert not durability.safe
        assert "without AOF" in durability.detail


async def test_a_show_keeps_its_cards_in_the_order_they_were_pinned(world: World) -> None:
    store, m = world.store, world.merchant
    show = Show(id=ShowId(new_id("s_")), merchant=m, title="Autumn launch")
    other = Show(id=ShowId(new_id("s_")), merchant=m, title="Winter")
    for s in (show, other):
        await store.create_show(s, "t")
    tea = pin(CardId(new_id("c_")), show.id, world.tea, "", 1000)
    cake = pin(CardId(new_id("c_")), show.id, world.cake, "Cake!", 2000)
    await store.put_card(m, tea)
    await store.put_card(m, cake)
    await store.put_card(m, pin(CardId(new_id("c_")), other.id, world.tea, "", 3000))
    assert await store.cards(show.id) == [tea, cake]
    flash = replace(tea, price=Amount(990), ends_at_ms=10_000, limit_per_shopper=1)
    await store.put_card(m, flash)
    assert await store.cards(show.id) == [flash, cake]
    assert sorted(await store.shows_pinning(m, world.tea.id)) == sorted([show.id, other.id])
    await store.remove_card(m, show.id, flash.id)
    assert await store.cards(show.id) == [cake]
    assert await store.shows_pinning(m, world.tea.id) == [other.id]
    assert await store.shows_pinning(m, world.cake.id) == [show.id]
    assert await store.cards(ShowId(new_id("s_"))) == []


async def test_users_are_unique_by_name_within_a_merchant(world: World) -> None:
    store, m = world.store, world.merchant
    operator = User(
        merchant=m, username="li", role=Role.HQ_OPERATOR, branch=None, password_hash="h1"
    )
    franchisee = User(
        merchant=m, username="wang", role=Role.FRANCHISEE, branch=world.near.id, password_hash="h2"
    )
    assert await store.create_user(operator)
    assert await store.create_user(franchisee)
    assert not await store.create_user(replace(operator, password_hash="h3"))
    assert await store.user(m, "li") == operator
    assert await store.user(m, "wang") == franchisee
    assert await store.user(m, "zhao") is None
    other = await World.create(store)
    assert await store.user(other.merchant, "li") is None


async def test_a_shopper_has_a_name_at_one_merchant(world: World) -> None:
    store, m = world.store, world.merchant
    shopper = ShopperId(new_id("u_"))
    assert await store.shopper_name(m, shopper) is None
    await store.create_shopper(m, shopper, "Xiao Mei")
    assert await store.shopper_name(m, shopper) == "Xiao Mei"
    other = await World.create(store)
    assert await store.shopper_name(other.merchant, shopper) is None


async def test_a_session_is_found_by_its_token_digest_until_deleted(world: World) -> None:
    store = world.store
    actor = Actor(role=Role.FRANCHISEE, merchant=world.merchant, branch=world.near.id)
    digest = hashlib.sha256(new_id("token-").encode()).digest()
    session = Session(actor, now_ms() + 3_600_000)
    await store.create_session(digest, session)
    assert await store.session(digest) == session
    assert await store.session(hashlib.sha256(b"another").digest()) is None
    await store.delete_session(digest)
    assert await store.session(digest) is None


async def test_expired_sessions_are_forgotten_and_live_ones_kept(world: World) -> None:
    store = world.store
    actor = Actor(role=Role.SHOPPER, merchant=world.merchant, shopper=ShopperId(new_id("u_")))
    now = now_ms()
    live, stale = (hashlib.sha256(new_id("token-").encode()).digest() for _ in range(2))
    await store.create_session(live, Session(actor, now + 3_600_000))
    await store.create_session(stale, Session(actor, now - 1))  # already over
    await store.forget_expired_sessions(now, limit=10_000)
    assert await store.session(stale) is None
    assert await store.session(live) == Session(actor, now + 3_600_000)
