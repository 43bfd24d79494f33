"""Topics a user is influential about (§8): own hashtags, confirmed by engagement on them.

Only the user's own originals, quotes and replies create topic evidence; engagement on one of
their tweets (its ``ref_hashtags``) adds to those topics. A retweet of someone else's tweet
gives the retweeter nothing, however far it travels. At most ``max_topics`` per user are kept
with Space-Saving: a new topic replaces the weakest and inherits its mass as known error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from scoring.fold import left_sum
from scoring.model import Model


@dataclass(slots=True)
class TopicStats:
    own_tweets: int = 0
    days: list[int] = field(default_factory=list)
    """Distinct UTC days with an own tweet on the topic (capped)."""
    mass: float = 0.0
    """Engagement contributions on the topic, forward-decayed (fast rate, user landmark)."""
    count: int = 0
    """Engagements received on the topic."""
    engagers: list[str] = field(default_factory=list)
    """Distinct engagers (capped)."""
    tweets: dict[str, float] = field(default_factory=dict)
    """Mass per engaged tweet, for the largest single tweet's share (Space-Saving, capped)."""
    error: float = 0.0
    """Mass inherited from the topic this one replaced (Space-Saving overestimate)."""


@dataclass(frozen=True, slots=True)
class TopicEvidence:
    """Why a topic is or is not published, for explanations and the API."""

    topic: str
    published: bool
    own_tweets: int
    days: int
    engagers: int
    engagements: int
    top_tweet_share: float
    wilson_share: float
    share: float
    """Shrunk share of the user's engagement mass: (T + alpha*prior) / (sum T + alpha)."""


def _slot(topics: dict[str, TopicStats], tag: str, model: Model, own: bool) -> TopicStats | None:
    stats = topics.get(tag)
    if stats is not None:
        return stats
    if len(topics) >= model.max_topics:
        weakest = min(topics, key=lambda t: (topics[t].own_tweets > 0, topics[t].mass, t))
        victim = topics[weakest]
        if not own and victim.own_tweets > 0:
            return None
        del topics[weakest]
        stats = TopicStats(mass=victim.mass, error=victim.mass)
    else:
        stats = TopicStats()
    topics[tag] = stats
    return stats


def record_own_tweet(
    topics: dict[str, TopicStats], tags: tuple[str, ...], day: int, model: Model
) -> None:
    """The user posted an original, quote or reply carrying `tags`."""
    for tag in tags:
        stats = _slot(topics, tag, model, own=True)
        assert stats is not None
        stats.own_tweets += 1
        if day not in stats.days and len(stats.days) < model.max_days_per_topic:
            stats.days.append(day)
            stats.days.sort()


def record_topic_engagement(
    topics: dict[str, TopicStats],
    tags: tuple[str, ...],
    amount: float,
    actor: str,
    tweet_id: str | None,
    model: Model,
) -> None:
    """Someone engaged the user's tweet carrying `tags`; `amount` is forward-decayed mass."""
    for tag in tags:
        stats = _slot(topics, tag, model, own=False)
        if stats is None:
            continue
        stats.mass += amount
        stats.count += 1
        if actor not in stats.engagers and len(stats.engagers) < model.max_engagers_per_topic:
            stats.engagers.append(actor)
        if tweet_id is not None:
            tweets = stats.tweets
            if tweet_id in tweets:
                tweets[tweet_id] += amount
            elif len(tweets) < model.max_tweets_per_topic:
                tweets[tweet_id] = amount
            else:
                smallest = min(tweets, key=lambda t: (tweets[t], t))
                tweets[tweet_id] = tweets.pop(smallest) + amount


def wilson_lower_bound(successes: int, trials: int, z: float) -> float:
    """Lower end of the Wilson score interval for a proportion."""
    if trials <= 0:
        return 0.0
    p = successes / trials
    z2 = z * z
    centre = p + z2 / (2 * trials)
    margin = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return max(0.0, (centre - margin) / (1 + z2 / trials))


def topic_evidence(
    topics: dict[str, TopicStats], total_mass: float, total_count: int, model: Model
) -> list[TopicEvidence]:
    """Evidence for every tracked topic, published ones first, then by share."""
    out: list[TopicEvidence] = []
    for tag, stats in topics.items():
        mass = max(0.0, stats.mass - stats.error)
        tweet_mass = left_sum(stats.tweets.values())
        top_share = max(stats.tweets.values()) / tweet_mass if tweet_mass > 0 else 1.0
        wilson = wilson_lower_bound(min(stats.count, total_count), total_count, model.wilson_z)
        alpha = model.topic_prior_weight
        share = (mass + alpha * model.topic_prior_share) / (max(total_mass, mass) + alpha)
        published = (
            stats.own_tweets >= model.min_own_tweets
            and len(stats.days) >= model.min_topic_days
            and len(stats.engagers) >= model.min_topic_engagers
            and top_share <= model.max_tweet_share
            and wilson >= model.min_wilson_share
        )
        out.append(
            TopicEvidence(
                topic=tag,
                published=published,
                own_tweets=stats.own_tweets,
                days=len(stats.days),
                engagers=len(stats.engagers),
                engagements=stats.count,
                top_tweet_share=top_share,
                wilson_share=wilson,
                share=share,
            )
        )
    out.sort(key=lambda e: (not e.published, -e.share, e.topic))
    return out
