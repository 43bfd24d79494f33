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


def _positions(user: str) -> tuple[int, ...]:
    digest = int.from_bytes(hashlib.blake2b(user.encode(), digest_size=8).digest(), "little")
    return tuple((digest >> (i * _INDEX_BITS)) & _MASK for i in range(HASHES))


def add(bits: int, user: str) -> int:
    """The filter `bits` with `user` added."""
    for position in _positions(user):
        bits |= 1 << position
    return bits


def might_contain(bits: int, user: str) -> bool:
    """False if `user` was never added; True if it was (or, rarely, by collision)."""
    return bits != 0 and all(bits >> position & 1 for position in _positions(user))
