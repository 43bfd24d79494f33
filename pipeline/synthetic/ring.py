"""``ring``: accounts that retweet each other on a timer (SCORING.md §3, reciprocity).

Placed over the last 4 days of the span; draws no background engagers.
"""

from __future__ import annotations

from pipeline.synthetic.events import DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS, Event, EventBuilder
from pipeline.synthetic.placement import Placement, Scenario

__all__ = ["RING_PREFIX", "SCENARIO", "ring_events", "ring_members"]

RING_PREFIX = "ring"
"""Ring members are ``ring-00`` … ``ring-19`` (``f"{prefix}-{i:02d}"``)."""
RING_FOLLOWERS = 150
"""Each ring member's follower count: small accounts pooling their reach."""
RING_HASHTAG = "teamfollowback"
"""Hashtag of the ring members' own tweets."""
RING_RETWEET_DELAY_MS = 5 * MINUTE_MS
"""Retweets of a round start this long after the round's tweets."""
RING_DAYS = 4
"""A ring runs this long by default, and is placed over the last this many days of the span."""


def ring_members(members: int = 20, prefix: str = RING_PREFIX) -> list[str]:
    """User ids of a ring: ``ring-00`` … ``ring-19`` by default."""
    return [f"{prefix}-{i:02d}" for i in range(members)]


def ring_events(
    start_ms: int,
    *,
    members: int = 20,
    days: int = RING_DAYS,
    every_hours: int = 2,
    prefix: str = RING_PREFIX,
    followers: int = RING_FOLLOWERS,
) -> list[Event]:
    """A retweet ring: every ``every_hours`` h for ``days`` days, each member tweets once and then
    retweets every other member's latest tweet (round-robin, spread over the round).

    Defaults: 48 rounds x (20 tweets + 20·19 retweets) = 19,200 events; every member retweets
    each of the 19 others 48 times.
    """
    out = EventBuilder(prefix)
    users = ring_members(members, prefix)
    interval_ms = every_hours * HOUR_MS
    retweets_per_round = members * (members - 1)
    slot_ms = (interval_ms - RING_RETWEET_DELAY_MS) // max(1, retweets_per_round)
    for r in range(days * 24 // every_hours):
        round_ms = start_ms + r * interval_ms
        latest = [
            out.tweet(member, round_ms + i * SECOND_MS, [RING_HASHTAG], followers)
            for i, member in enumerate(users)
        ]
        slot = 0
        for shift in range(1, members):
            for i, member in enumerate(users):
                tweet = latest[(i + shift) % members]
                ts = round_ms + RING_RETWEET_DELAY_MS + slot * slot_ms
                out.engage("retweet", ts, member, followers, target=tweet.author, ref=tweet)
                slot += 1
    return out.events()


def place(at: Placement) -> list[Event]:
    """``ring_events`` from ``E - 4 d``."""
    return ring_events(at.end_ms - RING_DAYS * DAY_MS)


SCENARIO = Scenario("ring", min_days=RING_DAYS, min_users=0, place=place)
