"""The msgpack envelope of every websocket message, and server frames built once.

`{"v": 1, "type": ..., "seq": n, "data": {...}}` (DESIGN.md "Realtime channel"). Pure:
bytes in, values out, or `BadFrame` with a reason the client is told. Server frames
are whole RFC 6455 binary frames, built once and written to every socket of a room:
per-message compression is off, so the bytes are the same for every client.
"""

from __future__ import annotations

import struct
from typing import Any, Final

import msgpack

from commerce.values import value

VERSION: Final = 1
INBOUND_BYTES_MAX: Final = 4096  # a hello or a heartbeat is tens of bytes
LAST_SEQ_MAX: Final = 2**53


class BadFrame(ValueError):
    """An inbound message the server will not act on; the message says why."""


@value
class Hello:
    """First message of a connection: where the client left off, if anywhere."""

    last_seq: int | None


@value
class Heartbeat:
    pass


ClientMessage = Hello | Heartbeat


def encode(kind: str, seq: int, data: dict[str, Any]) -> bytes:
    payload: bytes = msgpack.packb({"v": VERSION, "type": kind, "seq": seq, "data": data})
    return payload


def binary_frame(payload: bytes) -> bytes:
    """A final, unmasked binary frame (RFC 6455 §5.2): what a server sends."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x82, n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x82, 126, n)
    else:
        header = struct.pack("!BBQ", 0x82, 127, n)
    return header + payload


def decode_client(payload: bytes) -> ClientMessage:
    """Parse a client's message; raises BadFrame naming what is wrong."""
    if len(payload) > INBOUND_BYTES_MAX:
        raise BadFrame(f"messages are at most {INBOUND_BYTES_MAX} bytes")
    try:
        message = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except (ValueError, msgpack.UnpackException, TypeError) as exc:
        raise BadFrame(f"not msgpack ({type(exc).__name__})") from None
    if not isinstance(message, dict):
        raise BadFrame("a message is a map with v, type and data")
    version = message.get("v")
    if type(version) is not int or version != VERSION:  # True == 1 and 1.0 == 1 in Python
        raise BadFrame(f"v must be {VERSION}")
    kind, data = message.get("type"), message.get("data", {})
    if not isinstance(data, dict):
        raise BadFrame("data must be a map")
    if kind == "hello":
        last_seq = data.get("last_seq")
        if last_seq is not None and (
            isinstance(last_seq, bool)
            or not isinstance(last_seq, int)
            or not 0 <= last_seq <= LAST_SEQ_MAX
        ):
            raise BadFrame("last_seq must be a sequence number or nil")
        return Hello(last_seq)
    if kind == "heartbeat":
        return Heartbeat()
    raise BadFrame(f"unknown type {kind!r}: send hello or heartbeat")
