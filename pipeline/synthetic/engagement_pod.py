"""``engagement-pod``: real authors who also retweet each other on a schedule (adversary).

Ten accounts each have a normal engaged life (a daily tweet, engaged by 15 background
accounts), and for the last 14 days they also retweet every other member's daily tweet. The
pod should add nothing: a member must not score much above the same member without the pod.
Placed over the last 30 days of the span (the pod in its last 14).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pipeline.synthetic.events import (
    DAY_MS,
    HOUR_MS,
    Event,
    EventBuilder,
    distinct_pool,
    event_order,
)
from pipeline.synthetic.life import host_life
from pipeline.synthetic.placement import Placement, Scenario

__all__ = ["POD_PREFIX", "SCENARIO", "pod_events", "pod_life_events", "pod_members"]

POD_PREFIX = "pod"
"""Members are ``pod-0`` … ``pod-9``."""
POD_MEMBERS = 10
POD_LIFE_DAYS = 30
POD_DAYS = 14
POD_REAL_ENGAGERS = 15
"""Background accounts engaging each member's own life."""
POD_LIFE_PER_DAY = 2.0
POD_FOLLOWERS = 800
POD_HASHTAG = "podcast"


def pod_members(members: int = POD_MEMBERS) -> list[str]:
    return [f"{POD_PREFIX}-{i}" for i in range(members)]


def pod_life_events(
    start_ms: int, *, engagers: Sequence[str], rng: random.Random, days: int = POD_LIFE_DAYS
) -> list[Event]:
    """Each member's real life over ``days`` days: ``POD_REAL_ENGAGERS`` background accounts
    engage it ``POD_LIFE_PER_DAY`` times a day. ``engagers`` must hold at least that many."""
    pool = distinct_pool(engagers, POD_REAL_ENGAGERS, "pod_life_events")
    out = EventBuilder(f"{POD_PREFIX}life")
    for member in pod_members():
        host_life(
            out,
            member,
            start_ms,
            days,
            engagers=rng.sample(pool, POD_REAL_ENGAGERS),
            count=round(POD_LIFE_PER_DAY * days),
            rng=rng,
            hashtag=POD_HASHTAG,
            followers=POD_FOLLOWERS,
        )
    return out.events()


def pod_events(start_ms: int, *, days: int = POD_DAYS) -> list[Event]:
    """The pod itself: every day for ``days`` days from ``start_ms``, each member tweets and
    every other member retweets that tweet within the next hours."""
    out = EventBuilder(POD_PREFIX)
    members = pod_members()
    for day in range(days):
        base = start_ms + day * DAY_MS + 9 * HOUR_MS
        for i, member in enumerate(members):
            tweet = out.tweet(member, base + i * 60_000, [POD_HASHTAG], POD_FOLLOWERS)
            for j, other in enumerate(members):
                if other != member:
                    at = base + HOUR_MS + (i * len(members) + j) * 60_000
                    out.engage("retweet", at, other, POD_FOLLOWERS, target=member, ref=tweet)
    return out.events()


def place(at: Placement) -> list[Event]:
    """Members' lives over the last 30 days, the pod over the last 14."""
    life_start = at.end_ms - POD_LIFE_DAYS * DAY_MS
    life = pod_life_events(life_start, engagers=at.users, rng=at.rng)
    return sorted(life + pod_events(at.end_ms - POD_DAYS * DAY_MS), key=event_order)


SCENARIO = Scenario(
    "engagement-pod", min_days=POD_LIFE_DAYS, min_users=POD_REAL_ENGAGERS, place=place
)
