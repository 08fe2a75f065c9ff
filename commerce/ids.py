"""Identifier and money types shared by the whole core.

Ids are opaque strings minted at the edge (the core never draws random numbers);
`Amount` is an integer in the currency's minor unit (fen, cents), never a float.
"""

from __future__ import annotations

import re
from typing import Final, NewType

MerchantId = NewType("MerchantId", str)
BranchId = NewType("BranchId", str)
ShowId = NewType("ShowId", str)
ProductId = NewType("ProductId", str)
SkuId = NewType("SkuId", str)
ShopperId = NewType("ShopperId", str)
OrderId = NewType("OrderId", str)
CardId = NewType("CardId", str)
Amount = NewType("Amount", int)  # minor units (fen, cents)
RateBp = NewType("RateBp", int)  # basis points: 10000 = 100 %

# Ids appear in URLs that are printed as QR codes at the counter: short, lowercase,
# unambiguous. A one-letter kind prefix makes a pasted id self-describing.
ID_PATTERN: Final = re.compile(r"^[mbspkuoc]_[a-z2-7]{10,26}$")
ID_PREFIX: Final = {
    "merchant": "m_",
    "branch": "b_",
    "show": "s_",
    "product": "p_",
    "sku": "k_",
    "shopper": "u_",
    "order": "o_",
    "card": "c_",
}


def is_valid_id(kind: str, value: str) -> bool:
    """Whether `value` is well-formed for an id of `kind` ("merchant", "branch", "show")."""
    return value.startswith(ID_PREFIX[kind]) and ID_PATTERN.match(value) is not None
