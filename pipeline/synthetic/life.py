"""A host's normal engaged life: the steady background that party, vacation and new-account
scenarios stand out against (a score can only be judged against ordinary days)."""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence

from pipeline.synthetic.events import (
    DAY_MS,
    DEFAULT_ENGAGER_FOLLOWERS,
    HOUR_MS,
    MINUTE_MS,
    Event,
    EventBuilder,
    distinct_pool,
    stratified_times,
)

__all__ = [
    "HOST_HASHTAG",
    "HOST_TWEET_WINDOW_MS",
    "INJECT_LIFE_ENGAGERS",
    "INJECT_LIFE_PER_DAY",
    "MIN_ENGAGER_POOL",
    "host_engagement_events",
    "host_life",
]

MIN_ENGAGER_POOL = 20
"""Engagement of a host or topical author must come from at least this many distinct accounts."""
HOST_FOLLOWERS = 1_000
"""Default follower count of a host in ``host_engagement_events``."""
HOST_HASHTAG = "dailylife"
"""Default hashtag of a host's daily tweet."""
HOST_TWEET_WINDOW_MS = 12 * HOUR_MS
"""A host's daily tweet falls at a random time in the first 12 h of the day."""
FIRST_ENGAGEMENT_DELAY_MS = 10 * MINUTE_MS
"""No engagement before the host's first tweet has been up this long."""
HOST_KIND_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("retweet", 0.6),
    ("reply", 0.2),
    ("mention", 0.2),
)
"""Kind mix of the steady engagement of a host."""
INJECT_LIFE_ENGAGERS = 40
"""Size of the engager pool of a host's normal life in a default placement."""
INJECT_LIFE_PER_DAY = 3.0
"""Engagements a day in a host's normal life in a default placement."""


def host_life(
    out: EventBuilder,
    host: str,
    start_ms: int,
    days: int,
    *,
    engagers: Sequence[str],
    count: int,
    rng: random.Random,
    hashtag: str,
    followers: int,
) -> None:
    """The host tweets daily (the first at ``start_ms``); ``count`` engagements at stratified
    times engage the host's latest tweet (or name), engagers taken in turn from a shuffled pool,
    so min(count, pool) of them are distinct."""
    if days < 1:
        raise ValueError("a host's life needs at least one day")
    tweet_times = [start_ms] + [
        start_ms + day * DAY_MS + rng.randrange(HOST_TWEET_WINDOW_MS) for day in range(1, days)
    ]
    tweets = [out.tweet(host, ts, [hashtag], followers) for ts in tweet_times]
    pool = list(engagers)
    rng.shuffle(pool)
    kinds = [kind for kind, _ in HOST_KIND_WEIGHTS]
    weights = [weight for _, weight in HOST_KIND_WEIGHTS]
    first_ms = start_ms + FIRST_ENGAGEMENT_DELAY_MS
    times = stratified_times(rng, first_ms, start_ms + days * DAY_MS - first_ms, count)
    for k, ts in enumerate(times):
        kind = rng.choices(kinds, weights)[0]
        latest = tweets[bisect.bisect_right(tweet_times, ts) - 1]
        ref = None if kind == "mention" else latest
        out.engage(kind, ts, pool[k % len(pool)], DEFAULT_ENGAGER_FOLLOWERS, target=host, ref=ref)


def host_engagement_events(
    host: str,
    start_ms: int,
    days: int,
    *,
    engagers: Sequence[str],
    per_day: float = 1.0,
    rng: random.Random,
    hashtag: str = HOST_HASHTAG,
    followers: int = HOST_FOLLOWERS,
    prefix: str | None = None,
) -> list[Event]:
    """Steady engagement of ``host`` over ``days`` days from ``start_ms``.

    The host tweets once a day with ``hashtag`` (the first at ``start_ms``); ``round(per_day ·
    days)`` engagements (retweets and replies of the host's latest tweet, mentions) at evenly
    stratified times come from ``engagers`` (≥ 20 distinct accounts) in turn, so every pool
    member engages once there are enough engagements. Nothing happens outside ``[start_ms,
    start_ms + days·24 h)``. Ids are prefixed ``life-<host>-<start_ms>`` unless ``prefix``.
    """
    pool = distinct_pool(engagers, MIN_ENGAGER_POOL, "host_engagement_events")
    out = EventBuilder(prefix if prefix is not None else f"life-{host}-{start_ms}")
    count = round(per_day * days)
    host_life(
        out,
        host,
        start_ms,
        days,
        engagers=pool,
        count=count,
        rng=rng,
        hashtag=hashtag,
        followers=followers,
    )
    return out.events()
