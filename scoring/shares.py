"""The shapes of a day's share of a user's mass: computed in `scoring.mass`, cached in the state.

Apart from both so that `scoring.state` can hold the cache without importing the code that
fills it (`scoring.mass` reads the state: importing it back would be a cycle).
"""

from __future__ import annotations

from typing import NamedTuple


class DayShare(NamedTuple):
    """How one day's engagement splits into regular mass and burst excess."""

    regular: float
    """Multiplier for the day's sums that yields its regular mass: min(G(X), G(B)) / X."""
    excess: float
    """Multiplier for the day's burst sum: (G(X) - G(B))^+ weighted by kind, over X."""
    engagers: float
    """Distinct new engagers within the user's daily baseline."""
    burst_engagers: float
    """Weighted new engagers above the baseline (they fade with the burst)."""


class ShareCache(NamedTuple):
    """What the open days' shares need that only changes when an older day changes.

    Engagements arrive almost always on the newest open day, whose baseline depends only on the
    days before it: the older days' shares and the newest day's baseline are computed once per
    change of the older days (``ReceivedState.shares``), not on every read.
    """

    older: list[DayShare]
    """Shares of every open day but the newest."""
    newest_baseline: tuple[float, float]
    """The newest day's baseline: average raw total and new engagers of the days before it."""
