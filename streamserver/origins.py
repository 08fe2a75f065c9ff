"""Which pages may make a browser send requests here: the Origin header's checks.

Browsers name the page that caused a request in `Origin` (RFC 6454 §7). The server's
own pages share its host; any other origin is a foreign site, trusted only if the
operator listed it (`Config.allowed_origins`). The port is part of the host, so
another server on the same machine is foreign too.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from aiohttp import web

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


def is_allowed_origin(origin: str, request: web.Request, allowed: tuple[str, ...] = ()) -> bool:
    """True for the server's own origin and for the operator's listed ones.

    The host is compared, not the scheme: behind a TLS proxy the server sees http while
    the page says https. "null" (sandboxed frames, some redirects) is foreign.
    """
    if origin in allowed:
        return True
    return urlsplit(origin).netloc == request.host
