"""``vacation``: a normal life followed by a week of silence (SCORING.md §5, grace).

Placed as ``VACATION_USER`` active from the start of the span (40 engagers, 3 a day), silent
for its last 7 days.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pipeline.synthetic.events import DAY_MS, Event
from pipeline.synthetic.life import (
    INJECT_LIFE_ENGAGERS,
    INJECT_LIFE_PER_DAY,
    host_engagement_events,
)
from pipeline.synthetic.placement import Placement, Scenario

__all__ = ["SCENARIO", "VACATION_USER", "vacation_events"]

VACATION_USER = "vacationer"
"""The user who goes silent for the last week of the placed span."""
VACATION_USER_FOLLOWERS = 800
INJECT_VACATION_SILENT_DAYS = 7
INJECT_VACATION_MIN_ACTIVE_DAYS = 7
"""The placed vacation needs a week of normal life before the week of silence."""


def vacation_events(
    user: str,
    start_ms: int,
    active_days: int,
    silent_days: int,
    *,
    engagers: Sequence[str],
    rng: random.Random,
    per_day: float = INJECT_LIFE_PER_DAY,
    return_days: int = 0,
    followers: int = VACATION_USER_FOLLOWERS,
) -> list[Event]:
    """A normal engaged life for ``active_days``, then ``silent_days`` in which ``user`` posts
    nothing and receives nothing, then (if ``return_days``) normal life again."""
    events = host_engagement_events(
        user,
        start_ms,
        active_days,
        engagers=engagers,
        per_day=per_day,
        rng=rng,
        followers=followers,
    )
    if return_days > 0:
        events += host_engagement_events(
            user,
            start_ms + (active_days + silent_days) * DAY_MS,
            return_days,
            engagers=engagers,
            per_day=per_day,
            rng=rng,
            followers=followers,
        )
    return events


def place(at: Placement) -> list[Event]:
    """Active from ``S``, silent for the span's last 7 days."""
    return vacation_events(
        VACATION_USER,
        at.start_ms,
        at.days - INJECT_VACATION_SILENT_DAYS,
        INJECT_VACATION_SILENT_DAYS,
        engagers=at.rng.sample(at.users, INJECT_LIFE_ENGAGERS),
        rng=at.rng,
    )


SCENARIO = Scenario(
    "vacation",
    min_days=INJECT_VACATION_SILENT_DAYS + INJECT_VACATION_MIN_ACTIVE_DAYS,
    min_users=INJECT_LIFE_ENGAGERS,
    place=place,
)
