"""Ids minted at the edge: the fast base32 equals RFC 4648's, and ids keep their form."""

from __future__ import annotations

import base64
import time
from typing import Final

from hypothesis import given
from hypothesis import strategies as st

from commerce.ids import ID_PREFIX, is_valid_id
from streamserver.ids import base32, new_id, new_order_id, pickup_code

RFC_4648: Final = "abcdefghijklmnopqrstuvwxyz234567"
SORTED: Final = "234567abcdefghijklmnopqrstuvwxyz"
FIVE_BYTES_TIMES = st.integers(1, 4).map(lambda k: 5 * k)


def rfc_base32(data: bytes) -> str:
    return base64.b32encode(data).decode().lower()


@given(FIVE_BYTES_TIMES.flatmap(lambda n: st.binary(min_size=n, max_size=n)))
def test_base32_is_rfc4648_base32_with_its_letters_in_ascii_order(data: bytes) -> None:
    assert base32(data) == rfc_base32(data).translate(str.maketrans(RFC_4648, SORTED))


@given(FIVE_BYTES_TIMES.flatmap(lambda n: st.tuples(*[st.binary(min_size=n, max_size=n)] * 2)))
def test_base32_text_compares_as_the_bytes_do(pair: tuple[bytes, bytes]) -> None:
    a, b = pair
    assert (base32(a) < base32(b)) == (a < b)


def test_the_extremes_of_80_bits() -> None:
    assert base32(bytes(10)) == "2" * 16
    assert base32(b"\xff" * 10) == "z" * 16


def test_new_ids_are_valid_and_distinct() -> None:
    for kind in ID_PREFIX:
        minted = {new_id(kind) for _ in range(1000)}
        assert len(minted) == 1000
        assert all(is_valid_id(kind, i) and len(i) == 18 for i in minted)


def test_order_ids_sort_by_minting_time_and_carry_72_random_bits() -> None:
    before_ms = time.time_ns() // 1_000_000
    minted = []
    for _ in range(3):
        minted += [new_order_id() for _ in range(500)]
        last_ms = time.time_ns() // 1_000_000
        while time.time_ns() // 1_000_000 == last_ms:  # the next ids carry a later millisecond
            pass
    after_ms = time.time_ns() // 1_000_000
    assert all(is_valid_id("order", i) and len(i) == 26 for i in minted)
    assert len(set(minted)) == len(minted)
    raw = [
        base64.b32decode(i[2:].translate(str.maketrans(SORTED, RFC_4648)).upper()) for i in minted
    ]
    stamps = [int.from_bytes(r[:6], "big") for r in raw]
    assert stamps == sorted(stamps)
    assert before_ms <= stamps[0]
    assert stamps[-1] <= after_ms
    # By text too (what the indexes compare): every id of a later millisecond sorts after.
    assert max(minted[:500]) < min(minted[500:1000])
    assert max(minted[500:1000]) < min(minted[1000:])
    assert len({r[6:] for r in raw}) == len(minted)


def test_pickup_codes_are_six_digits_and_vary() -> None:
    codes = [pickup_code() for _ in range(2000)]
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(set(codes)) > 1900  # 2000 draws from 10**6 values rarely collide
