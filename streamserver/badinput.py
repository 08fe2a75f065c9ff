"""Bad input at the edge: one exception naming the field, and typed JSON readers.

The error middleware answers every `BadInput` with 400 and the field's name, so a
handler never builds an error response for malformed input itself.
"""

from __future__ import annotations

import contextlib
import math
from enum import StrEnum
from typing import Any, TypeVar

import orjson
from aiohttp import web

JSON_BODY_BYTES_MAX = 64 * 1024

E = TypeVar("E", bound=StrEnum)


class BadInput(Exception):
    def __init__(self, field: str | None, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.status = status


async def read_json_object(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > JSON_BODY_BYTES_MAX:
        raise BadInput(None, f"body is larger than {JSON_BODY_BYTES_MAX} bytes", status=413)
    body = await request.content.read(JSON_BODY_BYTES_MAX + 1)
    if len(body) > JSON_BODY_BYTES_MAX:
        raise BadInput(None, f"body is larger than {JSON_BODY_BYTES_MAX} bytes", status=413)
    try:
        value = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise BadInput(None, f"body is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise BadInput(None, "body must be a JSON object")
    return value


def text_field(data: dict[str, Any], name: str, *, length_max: int, required: bool = True) -> str:
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise BadInput(name, f"{name} must be a non-empty string")
    if len(value) > length_max:
        raise BadInput(name, f"{name} must be at most {length_max} characters")
    return value.strip()


def coordinate_field(data: dict[str, Any], name: str, *, bound: float) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadInput(name, f"{name} must be a number")
    if abs(value) > bound:
        raise BadInput(name, f"{name} must be between -{bound} and {bound}")
    return float(value)


def choice_field(data: dict[str, Any], name: str, choices: type[E], default: E | None = None) -> E:
    """One of `choices`' values, or `default` when the field is absent."""
    value = data.get(name)
    if value is None and default is not None:
        return default
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return choices(value)
    allowed = " or ".join(f"'{choice}'" for choice in choices)
    raise BadInput(name, f"{name} must be {allowed}")
