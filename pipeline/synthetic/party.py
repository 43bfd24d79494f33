"""``party``: a one-night "Twitter party" of name-drops (SCORING.md §4, bursts).

Placed as ``PARTY_HOST``'s normal life over the whole span (40 engagers, 3 a day) plus the
party at 19:00 UTC 15 days before the end (``E - 15 d + 19 h``).
"""

from __future__ import annotations

import random

from pipeline.synthetic.events import (
    DAY_MS,
    HOUR_MS,
    Event,
    EventBuilder,
    event_order,
    stratified_times,
)
from pipeline.synthetic.life import (
    INJECT_LIFE_ENGAGERS,
    INJECT_LIFE_PER_DAY,
    host_engagement_events,
)
from pipeline.synthetic.placement import Placement, Scenario

__all__ = ["PARTY_HOST", "PARTY_PREFIX", "SCENARIO", "party_events", "party_guests"]

PARTY_HOST = "party-host"
"""The host of the placed party; has a normal engaged life before and after it."""
PARTY_PREFIX = "party"
"""Party guests are ``party-000`` … ``party-499`` (``f"{prefix}-{i:03d}"``)."""
PARTY_GUEST_FOLLOWERS = 30
"""Each party guest's follower count: fresh accounts."""
PARTY_HOST_FOLLOWERS = 2_000
"""The party host is a mid-scale account."""
INJECT_PARTY_DAYS_BEFORE_END = 15
INJECT_PARTY_HOUR = 19
"""The placed party starts at 19:00 UTC, 15 days before the end of the span."""


def party_guests(accounts: int = 500, prefix: str = PARTY_PREFIX) -> list[str]:
    """User ids of the party guests: ``party-000`` … ``party-499`` by default."""
    return [f"{prefix}-{i:03d}" for i in range(accounts)]


def party_events(
    host: str,
    evening_ms: int,
    *,
    mentions: int = 2000,
    accounts: int = 500,
    hours: int = 3,
    prefix: str = PARTY_PREFIX,
    seed: int = 0,
    followers: int = PARTY_GUEST_FOLLOWERS,
) -> list[Event]:
    """A one-night Twitter party: ``accounts`` new accounts mention ``host`` exactly ``mentions``
    times in total (each guest ⌊mentions/accounts⌋ or one more times), all within
    ``[evening_ms, evening_ms + hours)``."""
    if mentions < accounts:
        raise ValueError("a party needs at least one mention per account")
    rng = random.Random(seed)
    out = EventBuilder(prefix)
    guests = party_guests(accounts, prefix)
    order = [guests[k % accounts] for k in range(mentions)]
    rng.shuffle(order)
    times = stratified_times(rng, evening_ms, hours * HOUR_MS, mentions)
    for ts, guest in zip(times, order, strict=True):
        out.engage("mention", ts, guest, followers, target=host, ref=None)
    return out.events()


def place(at: Placement) -> list[Event]:
    """The host's life over the whole span, then the party (seeded from the same generator)."""
    life = host_engagement_events(
        PARTY_HOST,
        at.start_ms,
        at.days,
        engagers=at.rng.sample(at.users, INJECT_LIFE_ENGAGERS),
        per_day=INJECT_LIFE_PER_DAY,
        rng=at.rng,
        followers=PARTY_HOST_FOLLOWERS,
    )
    evening_ms = at.end_ms - INJECT_PARTY_DAYS_BEFORE_END * DAY_MS + INJECT_PARTY_HOUR * HOUR_MS
    party = party_events(PARTY_HOST, evening_ms, seed=at.rng.randrange(2**32))
    return sorted(life + party, key=event_order)


SCENARIO = Scenario(
    "party",
    min_days=INJECT_PARTY_DAYS_BEFORE_END + 1,
    min_users=INJECT_LIFE_ENGAGERS,
    place=place,
)
