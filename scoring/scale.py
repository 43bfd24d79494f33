"""The 1-100 scale (§7): S = 1 + 99 * F(z), F a frozen quantile table of the model version."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

SCALE_MIN = 1.0
SCALE_SPAN = 99.0


def quantile_level(z: float, knots: Sequence[float]) -> float:
    """F(z): the share of the reference population at or below z, interpolated between knots."""
    count = len(knots)
    if count < 2:
        return 0.0 if z <= 0.0 else 1.0 - 1.0 / (1.0 + z)
    if z <= knots[0]:
        return 0.0
    if z >= knots[-1]:
        return 1.0
    i = bisect_right(knots, z)
    low, high = knots[i - 1], knots[i]
    within = (z - low) / (high - low) if high > low else 1.0
    return (i - 1 + within) / (count - 1)


def to_scale(z: float, knots: Sequence[float]) -> float:
    """The displayed score for raw influence z, rounded to 2 decimals."""
    return round(SCALE_MIN + SCALE_SPAN * quantile_level(z, knots), 2)


def fit_knots(values: Sequence[float], count: int = 1001) -> list[float]:
    """Quantile knots (levels 0, 1/(count-1), ..., 1) of `values` by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("cannot fit a scale on an empty population")
    last = len(ordered) - 1
    knots: list[float] = []
    for i in range(count):
        position = last * i / (count - 1)
        low = int(position)
        high = min(low + 1, last)
        knots.append(ordered[low] + (ordered[high] - ordered[low]) * (position - low))
    return knots
