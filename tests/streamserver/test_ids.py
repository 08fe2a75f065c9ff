"""Ids minted at the edge: the fast base32 equals RFC 4648's, and ids keep their form."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from commerce.ids import ID_PREFIX, is_valid_id
from streamserver.ids import base32_80, new_id, pickup_code


@given(st.binary(min_size=10, max_size=10))
def test_base32_80_is_rfc4648_base32_in_lower_case(ten: bytes) -> None:
    assert base32_80(ten) == base64.b32encode(ten).decode().lower()


def test_the_extremes_of_80_bits() -> None:
    assert base32_80(bytes(10)) == "a" * 16
    assert base32_80(b"\xff" * 10) == "7" * 16


def test_new_ids_are_valid_and_distinct() -> None:
    for kind in ID_PREFIX:
        minted = {new_id(kind) for _ in range(1000)}
        assert len(minted) == 1000
        assert all(is_valid_id(kind, i) and len(i) == 18 for i in minted)


def test_pickup_codes_are_six_digits_and_vary() -> None:
    codes = [pickup_code() for _ in range(2000)]
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(set(codes)) > 1900  # 2000 draws from 10**6 values rarely collide
