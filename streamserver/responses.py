"""JSON answers: one encoder for every handler.

orjson writes the UTF-8 bytes directly (no str step) at a fraction of the standard
library's cost; enums, tuples and str subclasses (the core's ids) encode as their values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web


def json_response(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, headers=headers, content_type="application/json"
    )
