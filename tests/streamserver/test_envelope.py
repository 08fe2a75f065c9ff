"""The msgpack envelope and the server's prebuilt frames, on their own (no sockets).

A frame the hub writes straight to a transport must be a frame any websocket client
parses: checked by hand against RFC 6455 §5.2 and with aiohttp's own frame reader,
for each of the three payload-length encodings.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import msgpack
import pytest
from aiohttp import WSMsgType
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
from aiohttp.base_protocol import BaseProtocol

from streamserver.realtime.envelope import (
    INBOUND_BYTES_MAX,
    LAST_SEQ_MAX,
    VERSION,
    BadFrame,
    Heartbeat,
    Hello,
    binary_frame,
    decode_client,
    encode,
)

# Payload lengths at and around the edges of the 7-bit, 16-bit and 64-bit encodings.
LENGTHS = (0, 1, 125, 126, 127, 1000, 65535, 65536, 70_000, 300_000)


def parse_frame(data: bytes) -> tuple[int, bytes, bytes]:
    """One server frame by hand (RFC 6455 §5.2): (first byte, payload, rest of data).

    Checks what a server frame must be: no mask, and the shortest length encoding.
    """
    first, second = data[0], data[1]
    assert second & 0x80 == 0, "a server must not mask its frames"
    length, offset = second & 0x7F, 2
    if length == 126:
        (length,) = struct.unpack_from("!H", data, offset)
        offset += 2
        assert length >= 126, "the 16-bit form only for lengths the 7-bit form cannot hold"
    elif length == 127:
        (length,) = struct.unpack_from("!Q", data, offset)
        offset += 8
        assert length >= 1 << 16, "the 64-bit form only for lengths the 16-bit form cannot hold"
        assert length >> 63 == 0, "the most significant bit must be 0"
    payload = data[offset : offset + length]
    assert len(payload) == length, "truncated frame"
    return first, payload, data[offset + length :]


def payload_of(n: int) -> bytes:
    return bytes(i % 251 for i in range(n))


def test_encode_is_the_documented_envelope() -> None:
    payload = encode("card.shown", 42, {"id": "card_1", "price": 999})
    assert msgpack.unpackb(payload) == {
        "v": 1,
        "type": "card.shown",
        "seq": 42,
        "data": {"id": "card_1", "price": 999},
    }
    assert VERSION == 1


def test_encode_is_deterministic_so_a_room_can_share_the_bytes() -> None:
    data = {"sku": "k_1", "cards": [{"id": "c", "available_here": 3}]}
    assert encode("stock", 7, data) == encode("stock", 7, dict(data))


@pytest.mark.parametrize("n", LENGTHS)
def test_a_frame_is_a_final_unmasked_binary_frame_per_rfc_6455(n: int) -> None:
    payload = payload_of(n)
    frame = binary_frame(payload)
    first, parsed, rest = parse_frame(frame)
    assert first & 0x80, "FIN: one frame is the whole message"
    assert first & 0x70 == 0, "RSV1-3 clear: no extension (no compression)"
    assert first & 0x0F == 0x2, "opcode 2: binary"
    assert parsed == payload
    assert rest == b""
    header = len(frame) - n
    assert header == (2 if n < 126 else 4 if n < 1 << 16 else 10)


def test_frames_written_back_to_back_parse_one_after_another() -> None:
    payloads = [payload_of(n) for n in LENGTHS]
    data = b"".join(binary_frame(p) for p in payloads)
    parsed = []
    while data:
        _, payload, data = parse_frame(data)
        parsed.append(payload)
    assert parsed == payloads


async def test_aiohttps_websocket_reader_parses_the_frames() -> None:
    """The reader aiohttp's clients use, fed the bytes in awkward pieces."""
    loop = asyncio.get_running_loop()
    queue = WebSocketDataQueue(BaseProtocol(loop), 2**24, loop=loop)
    reader = WebSocketReader(queue, 0, False, True)  # no size limit, no compression
    payloads = [encode("card.updated", i, {"blob": payload_of(n)}) for i, n in enumerate(LENGTHS)]
    data = b"".join(binary_frame(p) for p in payloads)
    for start in range(0, len(data), 7919):  # splits headers and payloads alike
        assert reader.feed_data(data[start : start + 7919]) == (False, b"")
    for i, payload in enumerate(payloads):
        async with asyncio.timeout(1):
            message = await queue.read()
        assert message.type is WSMsgType.BINARY
        assert message.data == payload
        assert msgpack.unpackb(message.data)["seq"] == i


# -- what a client may send ---------------------------------------------------------


def packed(message: Any) -> bytes:
    data: bytes = msgpack.packb(message)
    return data


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"v": 1, "type": "hello", "data": {}}, Hello(None)),
        ({"v": 1, "type": "hello"}, Hello(None)),  # data may be left out
        ({"v": 1, "type": "hello", "data": {"last_seq": None}}, Hello(None)),
        ({"v": 1, "type": "hello", "data": {"last_seq": 0}}, Hello(0)),
        ({"v": 1, "type": "hello", "data": {"last_seq": 1234}}, Hello(1234)),
        ({"v": 1, "type": "hello", "data": {"last_seq": LAST_SEQ_MAX}}, Hello(LAST_SEQ_MAX)),
        ({"v": 1, "type": "heartbeat", "data": {}}, Heartbeat()),
        ({"v": 1, "type": "heartbeat"}, Heartbeat()),
        ({"v": 1, "type": "hello", "seq": 9, "data": {"last_seq": 3, "extra": 1}}, Hello(3)),
    ],
)
def test_decode_client_accepts_hello_and_heartbeat(message: Any, expected: Any) -> None:
    assert decode_client(packed(message)) == expected


def test_decode_client_accepts_a_message_of_exactly_the_limit() -> None:
    message = {"v": 1, "type": "heartbeat", "data": {"pad": ""}}
    pad = INBOUND_BYTES_MAX - len(packed(message))
    message["data"]["pad"] = "x" * (pad - 2)  # str 8-bit header takes 2 bytes, not 1
    data = packed(message)
    assert len(data) == INBOUND_BYTES_MAX
    assert decode_client(data) == Heartbeat()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not msgpack"),
        (b"\xc1", "not msgpack"),  # a byte msgpack never uses
        (b"\x92\x01", "not msgpack"),  # truncated array
        (packed({"v": 1, "type": "hello"}) + b"\x00", "not msgpack"),  # trailing bytes
        (b"hello", "not msgpack"),  # a fixint, then bytes that are not part of it
        (packed([1, "hello", {}]), "a message is a map"),
        (packed("hello"), "a message is a map"),
        (packed(1), "a message is a map"),
        (packed(None), "a message is a map"),
        (packed({1: 1, "type": "hello"}), "not msgpack"),  # non-string map keys
        (packed({"type": "hello", "data": {}}), "v must be 1"),
        (packed({"v": 2, "type": "hello", "data": {}}), "v must be 1"),
        (packed({"v": "1", "type": "hello", "data": {}}), "v must be 1"),
        (packed({"v": 0, "type": "hello", "data": {}}), "v must be 1"),
        (packed({"v": 1, "type": "subscribe", "data": {}}), "unknown type"),
        (packed({"v": 1, "type": "card.shown", "data": {}}), "unknown type"),
        (packed({"v": 1, "data": {}}), "unknown type"),
        (packed({"v": 1, "type": ["hello"], "data": {}}), "unknown type"),
        (packed({"v": 1, "type": b"hello", "data": {}}), "unknown type"),
        (packed({"v": 1, "type": "hello", "data": []}), "data must be a map"),
        (packed({"v": 1, "type": "hello", "data": "last_seq=3"}), "data must be a map"),
        (packed({"v": 1, "type": "heartbeat", "data": None}), "data must be a map"),
        (packed({"v": 1, "type": "hello", "data": {"last_seq": -1}}), "last_seq"),
        (packed({"v": 1, "type": "hello", "data": {"last_seq": True}}), "last_seq"),
        (packed({"v": 1, "type": "hello", "data": {"last_seq": False}}), "last_seq"),
        (packed({"v": 1, "type": "hello", "data": {"last_seq": 3.0}}), "last_seq"),
        (packed({"v": 1, "type": "hello", "data": {"last_seq": "3"}}), "last_seq"),
        (packed({"v": 1, "type": "hello", "data": {"last_seq": [3]}}), "last_seq"),
        (packed({"v": 1, "type": "hello", "data": {"last_seq": LAST_SEQ_MAX + 1}}), "last_seq"),
        (packed({"v": 1, "type": "hello", "data": {"last_seq": 2**64 - 1}}), "last_seq"),
        (packed({"v": 1, "type": "hello", "data": {"last_seq": -(2**63)}}), "last_seq"),
        (b"\x91" * 2000 + b"\x00", "not msgpack"),  # nested deeper than the unpacker allows
    ],
)
def test_decode_client_refuses_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(BadFrame) as refused:
        decode_client(data)
    assert reason in str(refused.value)


@pytest.mark.parametrize("v", [True, 1.0])
def test_decode_client_refuses_a_version_that_only_compares_equal_to_1(v: Any) -> None:
    """v is the integer 1: `True == 1` and `1.0 == 1` in Python, not in the schema."""
    with pytest.raises(BadFrame, match="v must be 1"):
        decode_client(packed({"v": v, "type": "hello", "data": {}}))


def test_decode_client_refuses_oversize_before_parsing() -> None:
    message = {"v": 1, "type": "hello", "data": {"pad": "x" * INBOUND_BYTES_MAX}}
    with pytest.raises(BadFrame, match=f"at most {INBOUND_BYTES_MAX} bytes"):
        decode_client(packed(message))
    with pytest.raises(BadFrame, match="at most"):
        decode_client(b"\xc1" * (INBOUND_BYTES_MAX + 1))  # size first: not "not msgpack"


def test_bad_frame_is_a_value_error_carrying_only_the_reason() -> None:
    with pytest.raises(ValueError, match="not msgpack") as refused:
        decode_client(b"\xc1")
    assert refused.value.__cause__ is None  # the unpacker's internals are not passed on
