"""``new-account``: an established account vs. a new, barely used one (SCORING.md §6,
shrinkage: a handful of engagements must not outrank a long record).

Placed as ``new_account_events`` over the last 30 days of the span.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pipeline.synthetic.events import DAY_MS, Event, EventBuilder, distinct_pool
from pipeline.synthetic.life import HOST_HASHTAG, host_life
from pipeline.synthetic.placement import Placement, Scenario

__all__ = ["ESTABLISHED", "NEWBIE", "SCENARIO", "new_account_events"]

ESTABLISHED = "established"
"""Established account: 3,000 followers, engaged by 200 distinct users over 30 days."""
NEWBIE = "newbie"
"""New, barely used account: 200 followers, 20 engagements from 3 accounts at the end."""
ESTABLISHED_FOLLOWERS = 3_000
NEWBIE_FOLLOWERS = 200
ESTABLISHED_ENGAGERS = 200
ESTABLISHED_PER_DAY = 10.0
"""Engagements a day of the established account (300 in 30 days: every one of 200 engages)."""
NEWBIE_ENGAGEMENTS = 20
NEWBIE_ENGAGERS = 3
NEWBIE_DAYS = 3
"""The newbie is active (tweets daily, gets engaged) only in its last three days."""
NEW_ACCOUNT_DAYS = 30
"""The scenario's length by default, and its placement: the last 30 days of the span."""


def new_account_events(
    start_ms: int,
    *,
    engagers: Sequence[str],
    rng: random.Random,
    days: int = NEW_ACCOUNT_DAYS,
    established: str = ESTABLISHED,
    newbie: str = NEWBIE,
    established_engagers: int = ESTABLISHED_ENGAGERS,
    established_per_day: float = ESTABLISHED_PER_DAY,
    newbie_engagements: int = NEWBIE_ENGAGEMENTS,
    newbie_engagers: int = NEWBIE_ENGAGERS,
    newbie_days: int = NEWBIE_DAYS,
    prefix: str = "newacct",
) -> list[Event]:
    """Over ``days`` days from ``start_ms``: ``established`` (3,000 followers) is engaged by
    exactly ``established_engagers`` (200) distinct accounts, ``established_per_day`` times a
    day; ``newbie`` (200 followers) appears only in the last ``newbie_days`` days, tweets daily
    and gets exactly ``newbie_engagements`` (20) engagements from ``newbie_engagers`` (3)
    accounts. ``engagers`` must hold at least ``established_engagers`` distinct accounts."""
    pool = distinct_pool(engagers, established_engagers, "new_account_events")
    out = EventBuilder(prefix)
    host_life(
        out,
        established,
        start_ms,
        days,
        engagers=rng.sample(pool, established_engagers),
        count=round(established_per_day * days),
        rng=rng,
        hashtag=HOST_HASHTAG,
        followers=ESTABLISHED_FOLLOWERS,
    )
    host_life(
        out,
        newbie,
        start_ms + (days - newbie_days) * DAY_MS,
        newbie_days,
        engagers=rng.sample(pool, newbie_engagers),
        count=newbie_engagements,
        rng=rng,
        hashtag=HOST_HASHTAG,
        followers=NEWBIE_FOLLOWERS,
    )
    return out.events()


def place(at: Placement) -> list[Event]:
    """``new_account_events`` from ``E - 30 d``."""
    return new_account_events(
        at.end_ms - NEW_ACCOUNT_DAYS * DAY_MS,
        engagers=at.rng.sample(at.users, ESTABLISHED_ENGAGERS),
        rng=at.rng,
    )


SCENARIO = Scenario(
    "new-account", min_days=NEW_ACCOUNT_DAYS, min_users=ESTABLISHED_ENGAGERS, place=place
)
