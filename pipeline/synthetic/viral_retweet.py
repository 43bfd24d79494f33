"""``viral-retweet``: a topic earned by one viral retweet vs. a real topical author (SCORING.md
§8: the retweeter must not become "influential about Amy Winehouse"; the author must).

Placed as the viral tweet at 12:00 UTC 10 days before the end with 300 cascade retweets, and
``TOPICAL_AUTHOR`` posting on #amywinehouse on 5 days from ``E - 6 d``.
"""

from __future__ import annotations

import math
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
    event_order,
    stratified_times,
)
from pipeline.synthetic.life import HOST_TWEET_WINDOW_MS, INJECT_LIFE_ENGAGERS, MIN_ENGAGER_POOL
from pipeline.synthetic.placement import Placement, Scenario

__all__ = [
    "SCENARIO",
    "TOPICAL_AUTHOR",
    "VIRAL_AUTHOR",
    "VIRAL_RETWEETER",
    "topical_author_events",
    "viral_retweet_events",
]

VIRAL_RETWEETER = "viral-retweeter"
"""Retweets one #amywinehouse tweet, which then goes viral through their retweet."""
VIRAL_AUTHOR = "viral-author"
"""Author of the #amywinehouse tweet that ``VIRAL_RETWEETER`` retweets."""
TOPICAL_AUTHOR = "topical-author"
"""Posts about #amywinehouse for days and is engaged by many: deserves the topic."""
VIRAL_RETWEETER_FOLLOWERS = 300
VIRAL_AUTHOR_FOLLOWERS = 5_000
TOPICAL_AUTHOR_FOLLOWERS = 800

VIRAL_HASHTAG = "amywinehouse"
"""The hashtag of the viral tweet (SCORING.md: 'influential about Amy Winehouse')."""
VIRAL_RETWEETS = 300
"""Accounts that retweet the viral retweet."""
VIRAL_FIRST_RETWEET_DELAY_MS = 10 * MINUTE_MS
"""The retweeter retweets the original this long after it was posted."""
VIRAL_HOURS = 24
"""The cascade of retweets of the retweet lasts this long."""
VIRAL_MEAN_DELAY_HOURS = 4.0
"""Mean delay of a cascade retweet (truncated exponential: most come early)."""
TOPICAL_RETWEETS_PER_TWEET = 10
"""Retweets each of the topical author's tweets receives."""
TOPICAL_ENGAGEMENT_WINDOW_MS = 12 * HOUR_MS
"""Retweets of a topical tweet arrive within this long after it."""

INJECT_VIRAL_DAYS_BEFORE_END = 10
INJECT_VIRAL_HOUR = 12
"""The placed viral tweet is posted at 12:00 UTC, 10 days before the end of the span."""
INJECT_TOPICAL_DAYS = 5
"""The placed topical author posts on the last 5 days (starting 6 days before the end)."""


def viral_retweet_events(
    retweeter: str,
    author: str,
    start_ms: int,
    *,
    engagers: Sequence[str],
    rng: random.Random,
    retweets: int = VIRAL_RETWEETS,
    hours: int = VIRAL_HOURS,
    prefix: str = "viral",
) -> list[Event]:
    """``author`` posts one #amywinehouse tweet at ``start_ms``; ``retweeter`` retweets it 10 min
    later; then ``retweets`` distinct engagers retweet the retweeter's retweet (kind ``retweet``,
    target ``retweeter``, ``ref_tweet_id`` = the original, ``ref_hashtags=["amywinehouse"]``)
    within ``hours`` after that, most of them early."""
    pool = distinct_pool(engagers, retweets, "viral_retweet_events")
    out = EventBuilder(prefix)
    original = out.tweet(author, start_ms, [VIRAL_HASHTAG], VIRAL_AUTHOR_FOLLOWERS)
    retweet_ms = start_ms + VIRAL_FIRST_RETWEET_DELAY_MS
    out.engage(
        "retweet", retweet_ms, retweeter, VIRAL_RETWEETER_FOLLOWERS, target=author, ref=original
    )
    window_ms = hours * HOUR_MS
    mean_ms = VIRAL_MEAN_DELAY_HOURS * HOUR_MS
    tail = 1.0 - math.exp(-window_ms / mean_ms)
    for actor in rng.sample(pool, retweets):
        # Inverse CDF of an exponential delay truncated to the cascade's window.
        delay = 1 + int(-mean_ms * math.log(1.0 - rng.random() * tail))
        ts = retweet_ms + min(delay, window_ms - 1)
        out.engage("retweet", ts, actor, DEFAULT_ENGAGER_FOLLOWERS, target=retweeter, ref=original)
    return out.events()


def topical_author_events(
    author: str,
    start_ms: int,
    *,
    hashtag: str,
    days: int = INJECT_TOPICAL_DAYS,
    engagers: Sequence[str],
    rng: random.Random,
    tweets_per_day: int = 1,
    retweets_per_tweet: int = TOPICAL_RETWEETS_PER_TWEET,
    followers: int = TOPICAL_AUTHOR_FOLLOWERS,
    prefix: str | None = None,
) -> list[Event]:
    """``author`` posts ``tweets_per_day`` tweets with ``hashtag`` on each of ``days`` days; each
    tweet gets ``retweets_per_tweet`` retweets (``ref_hashtags=[hashtag]``) within 12 h, engagers
    taken in turn from a shuffled pool of ≥ 20 distinct accounts. Defaults: 5 tweets on 5 days,
    50 retweets, no tweet holds more than a fifth of the engagement."""
    pool = distinct_pool(engagers, MIN_ENGAGER_POOL, "topical_author_events")
    rng.shuffle(pool)
    out = EventBuilder(prefix if prefix is not None else f"topic-{author}-{start_ms}")
    engagements = 0
    for day in range(days):
        day_ms = start_ms + day * DAY_MS
        for ts in stratified_times(rng, day_ms, HOST_TWEET_WINDOW_MS, tweets_per_day):
            tweet = out.tweet(author, ts, [hashtag], followers)
            window = stratified_times(rng, ts + 1, TOPICAL_ENGAGEMENT_WINDOW_MS, retweets_per_tweet)
            for retweet_ms in window:
                actor = pool[engagements % len(pool)]
                out.engage(
                    "retweet",
                    retweet_ms,
                    actor,
                    DEFAULT_ENGAGER_FOLLOWERS,
                    target=author,
                    ref=tweet,
                )
                engagements += 1
    return out.events()


def place(at: Placement) -> list[Event]:
    """The viral cascade 10 days before the end, the topical author on the last days."""
    viral_ms = at.end_ms - INJECT_VIRAL_DAYS_BEFORE_END * DAY_MS + INJECT_VIRAL_HOUR * HOUR_MS
    viral = viral_retweet_events(
        VIRAL_RETWEETER,
        VIRAL_AUTHOR,
        viral_ms,
        engagers=at.rng.sample(at.users, VIRAL_RETWEETS),
        rng=at.rng,
    )
    topical = topical_author_events(
        TOPICAL_AUTHOR,
        at.end_ms - (INJECT_TOPICAL_DAYS + 1) * DAY_MS,
        hashtag=VIRAL_HASHTAG,
        days=INJECT_TOPICAL_DAYS,
        engagers=at.rng.sample(at.users, INJECT_LIFE_ENGAGERS),
        rng=at.rng,
    )
    return sorted(viral + topical, key=event_order)


SCENARIO = Scenario(
    "viral-retweet",
    min_days=INJECT_VIRAL_DAYS_BEFORE_END + 1,
    min_users=VIRAL_RETWEETS,
    place=place,
)
