"""Float sums in one fixed order, so the compiled twin (``native/``) can repeat them bit for bit.

Python 3.12 changed the built-in ``sum()`` of floats to compensated (Neumaier) summation: the
same values can now add to a different last bit than on 3.11, and differently from a plain
``+`` loop. The Rust core adds left to right (``0.0 + a + b + ...``, or ``+=`` in a loop), so
every float sum in ``scoring/`` whose order matters goes through `left_sum`, never ``sum()``:
parity with the compiled core then does not depend on the interpreter's version. Sums of ints
are exact either way and may keep ``sum()``.
"""

from __future__ import annotations

from collections.abc import Iterable


def left_sum(values: Iterable[float]) -> float:
    """``((0.0 + v0) + v1) + ...``: one rounding per addition, in iteration order.

    Starts from ``0.0`` as ``sum()`` starts from ``0``: an empty or all ``-0.0`` input gives
    ``0.0`` in both, and the Rust core's folds start from ``0.0`` too.
    """
    total = 0.0
    for value in values:
        total += value
    return total
