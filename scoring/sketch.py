"""A small Bloom filter of user ids: engagers whose pair entry was evicted by the cap.

Per-user pair maps are capped (§12), but "is this a new engager?" must not depend on whether an
old engager's entry happened to be evicted before it came back: that would make the count of
distinct engagers depend on arrival order. Evicted engagers go into this filter; one that comes
back is recognised and not counted again. Membership is a pure function of the set inserted, so
only a rare false positive (a genuinely new engager taken for an old one) can depend on order.
"""

from __future__ import annotations

import hashlib

FILTER_BITS = 1024
HASHES = 4
_INDEX_BITS = 10  # log2(FILTER_BITS)
_MASK = FILTER_BITS - 1


def _bits_of(user: str) -> int:
    """The filter bits of `user`: `HASHES` positions cut from one 64-bit blake2b digest."""
    digest = int.from_bytes(hashlib.blake2b(user.encode(), digest_size=8).digest(), "little")
    bits = 0
    for i in range(HASHES):
        bits |= 1 << ((digest >> (i * _INDEX_BITS)) & _MASK)
    return bits


def add(bits: int, user: str) -> int:
    """The filter `bits` with `user` added."""
    return bits | _bits_of(user)


def might_contain(bits: int, user: str) -> bool:
    """False if `user` was never added; True if it was (or, rarely, by collision)."""
    if not bits:
        return False
    own = _bits_of(user)
    return bits & own == own
