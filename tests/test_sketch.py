"""The Bloom filter of evicted engagers (scoring/sketch.py) sets the bits the compiled twin's
test pins, and answers membership without false negatives.

The vectors are read from native/tests/bloom.rs, so both cores are held to one table: a change
of hash, slice width or bit count in either fails one of the two tests.
"""

from __future__ import annotations

import re
from pathlib import Path

from scoring.sketch import FILTER_BITS, add, might_contain

BLOOM_RS = Path(__file__).resolve().parents[1] / "native" / "tests" / "bloom.rs"


def _vectors() -> list[tuple[str, int, int]]:
    """(id, bits of it alone, bits after adding every id up to it), as bloom.rs lists them."""
    found = re.findall(
        r'\(\s*"([^"]*)",\s*"([0-9a-f]+)",\s*"([0-9a-f]+)",\s*\)', BLOOM_RS.read_text()
    )
    assert len(found) >= 4, "the vectors of native/tests/bloom.rs are not where they were"
    return [(user, int(alone, 16), int(together, 16)) for user, alone, together in found]


def test_bits_are_the_pinned_vectors() -> None:
    together = 0
    for user, alone, expected in _vectors():
        assert add(0, user) == alone, user
        assert bin(alone).count("1") <= 4 and alone < 1 << FILTER_BITS
        together = add(together, user)
        assert together == expected, user
    assert might_contain(together, "bob")
    assert not might_contain(together, "carol")


def test_no_false_negatives_and_an_empty_filter_holds_nothing() -> None:
    users = [f"u{i}" for i in range(60)]
    bits = 0
    for user in users:
        bits = add(bits, user)
    assert all(might_contain(bits, user) for user in users)
    assert not might_contain(0, "")
    assert not might_contain(0, "alice")
    # a filter holding one id recognises it and, with 4 bits of 1024 set, little else
    one = add(0, "alice")
    assert might_contain(one, "alice")
    assert sum(might_contain(one, f"other{i}") for i in range(500)) == 0
