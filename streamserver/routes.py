"""The one route table: method, path, handler and who may call it.

`ACCESS` is derived from it and enforced by the access middleware; a test walks this
table and calls every non-public route with no token and with the wrong role's token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from commerce.values import value
from streamserver import pages, whip
from streamserver.api import (
    cards,
    catalog,
    consoles,
    fulfillment,
    merchants,
    orders,
    sessions,
    shows,
)
from streamserver.auth import Access

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@value
class Route:
    method: str
    path: str
    handler: Handler
    access: Access


M = "/api/merchants/{merchant}"
B = "/api/branches/{branch}"
S = "/shows/{show}"
WHIP = "/whip/{show}"
WHEP = "/whep/{show}/{branch}"

ROUTES: Final = (
    Route("GET", "/", pages.get_index_page, Access.PUBLIC),
    Route("GET", "/signin", pages.get_signin_page, Access.PUBLIC),
    # The purchase first: aiohttp tries a path's candidate routes in order, and in a
    # flash sale nearly every request is a purchase.
    Route("POST", "/api/shows/{show}/rooms/{branch}/orders", orders.post_order, Access.SHOPPER),
    Route("GET", f"{S}/host", pages.get_host_page, Access.PUBLIC),  # the page asks for the key
    Route("GET", f"{S}/rooms/{{branch}}", pages.get_watch_page, Access.PUBLIC),
    # The consoles check the session themselves: a stranger is sent to sign in.
    Route("GET", "/branches/{branch}/console", pages.get_branch_console_page, Access.PUBLIC),
    Route("GET", "/hq", pages.get_hq_page, Access.PUBLIC),
    Route("GET", "/api/health", shows.get_health, Access.PUBLIC),
    Route("POST", "/api/merchants", merchants.post_merchant, Access.PUBLIC),
    Route("GET", M, merchants.get_merchant, Access.OPERATOR),
    Route("GET", f"{M}/branches", merchants.get_branches, Access.OPERATOR),
    Route("POST", f"{M}/branches", merchants.post_branch, Access.OPERATOR),
    Route("POST", f"{M}/shows", shows.post_show, Access.OPERATOR),
    Route("GET", f"{M}/terms", catalog.get_terms, Access.OPERATOR),
    Route("PUT", f"{M}/terms", catalog.put_terms, Access.OPERATOR),
    Route("POST", f"{M}/products", catalog.post_product, Access.OPERATOR),
    Route("GET", f"{M}/catalog", catalog.get_catalog, Access.PUBLIC),
    Route("POST", f"{M}/stock-receipts", catalog.post_stock_receipt, Access.OPERATOR),
    Route("GET", f"{M}/stock", catalog.get_stock, Access.OPERATOR),
    Route("PUT", f"{M}/offers/{{sku}}", catalog.put_offer, Access.OPERATOR),
    Route("DELETE", f"{M}/offers/{{sku}}", catalog.delete_offer, Access.OPERATOR),
    Route("PATCH", f"{M}/branches/{{branch}}", catalog.patch_branch, Access.OPERATOR),
    Route("GET", f"{M}/sales", catalog.get_sales, Access.OPERATOR),
    Route("POST", f"{M}/users", sessions.post_user, Access.OPERATOR),
    Route("POST", f"{M}/shoppers", sessions.post_shopper, Access.PUBLIC),  # a guest account
    Route("POST", f"{M}/shoppers/{{shopper}}/top-ups", catalog.post_top_up, Access.OPERATOR),
    Route("POST", "/api/sessions", sessions.post_session, Access.PUBLIC),
    Route("GET", "/api/sessions/me", sessions.get_session, Access.SIGNED_IN),
    Route("DELETE", "/api/sessions/me", sessions.delete_session, Access.PUBLIC),  # always works
    Route("GET", "/api/me/orders", orders.get_my_orders, Access.SIGNED_IN),
    Route("GET", "/api/me/balance", orders.get_my_balance, Access.SIGNED_IN),
    Route("POST", "/api/me/orders/{order}/cancel", orders.post_my_order_cancel, Access.SIGNED_IN),
    Route("GET", f"{B}/queue", fulfillment.get_queue, Access.FRANCHISEE),
    Route("GET", f"{B}/orders", fulfillment.get_branch_orders, Access.FRANCHISEE),
    Route("GET", f"{B}/orders/{{order}}", fulfillment.get_branch_order, Access.FRANCHISEE),
    Route(
        "POST", f"{B}/orders/{{order}}/{{action}}", fulfillment.post_order_action, Access.FRANCHISEE
    ),
    Route("POST", f"{B}/pickups", fulfillment.post_pickup, Access.FRANCHISEE),
    Route("GET", f"{B}/customers", fulfillment.get_customers, Access.FRANCHISEE),
    Route("GET", f"{B}/statement", fulfillment.get_statement, Access.FRANCHISEE),
    Route(
        "GET",
        "/ws/branches/{branch}/console",
        consoles.get_branch_console_socket,
        Access.FRANCHISEE,
    ),
    Route("GET", f"{M}/shows", consoles.get_shows, Access.OPERATOR),
    Route("GET", "/ws/merchants/{merchant}/board", consoles.get_board_socket, Access.OPERATOR),
    Route("GET", "/api/shows/{show}/pace", consoles.get_pace, Access.HOST),
    Route("GET", "/api/shows/{show}", shows.get_show, Access.PUBLIC),
    Route("GET", "/api/shows/{show}/rooms/{branch}", shows.get_room, Access.PUBLIC),
    Route("GET", "/ws/shows/{show}/rooms/{branch}", shows.get_room_socket, Access.PUBLIC),
    Route("GET", "/api/shows/{show}/cards", cards.get_cards, Access.PUBLIC),
    Route("POST", "/api/shows/{show}/cards", cards.post_card, Access.HOST),
    Route("PATCH", "/api/shows/{show}/cards/{card}", cards.patch_card, Access.HOST),
    Route("DELETE", "/api/shows/{show}/cards/{card}", cards.delete_card, Access.HOST),
    Route("POST", "/api/shows/{show}/end", shows.post_show_end, Access.HOST),
    Route("POST", WHIP, whip.post_whip, Access.HOST),
    Route("OPTIONS", WHIP, whip.options_endpoint, Access.PUBLIC),
    Route("DELETE", f"{WHIP}/{{session}}", whip.delete_whip, Access.HOST),
    Route("PATCH", f"{WHIP}/{{session}}", whip.patch_session, Access.PUBLIC),  # always 405
    Route("OPTIONS", f"{WHIP}/{{session}}", whip.options_session, Access.PUBLIC),
    Route("POST", WHEP, whip.post_whep, Access.PUBLIC),
    Route("OPTIONS", WHEP, whip.options_endpoint, Access.PUBLIC),
    Route("DELETE", f"{WHEP}/{{session}}", whip.delete_whep, Access.PUBLIC),
    Route("PATCH", f"{WHEP}/{{session}}", whip.patch_session, Access.PUBLIC),
    Route("OPTIONS", f"{WHEP}/{{session}}", whip.options_session, Access.PUBLIC),
)

ACCESS: Final[dict[Handler, Access]] = {}
for _route in ROUTES:
    # One handler may serve several routes only with the same access.
    assert ACCESS.setdefault(_route.handler, _route.access) is _route.access, _route


def add_routes(app: web.Application) -> None:
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
    app.router.add_static("/static/", pages.STATIC_DIR, append_version=True)
