"""The generator's settings in one frozen object, checked when built: an unknown scenario or an
empty span fails here, not halfway through writing a stream."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.synthetic.events import DAY_MS
from pipeline.synthetic.registry import SCENARIOS

__all__ = ["GeneratorConfig"]


@dataclass(frozen=True, slots=True)
class GeneratorConfig:
    """Everything the generator's output depends on. Defaults give a realistic population."""

    users: int = 2000
    """Background users, ``u0001`` …"""
    days: int = 60
    """Length of the span in whole days from ``start_ms``."""
    seed: int = 1
    """Seed of every random choice; same config ⇒ identical events."""
    start_ms: int = 1_735_689_600_000
    """Start of the span, ms since the epoch (default 2025-01-01T00:00:00Z)."""
    scenarios: tuple[str, ...] = ()
    """Names from ``registry.SCENARIOS``, injected at their default placements."""

    follower_median: float = 200.0
    """Median follower count (lognormal)."""
    follower_sigma: float = 2.0
    """Lognormal sigma of follower counts: ~2.5 % above 10k, the largest ~100k-1M."""
    follower_max: int = 50_000_000
    """Upper clamp of follower counts."""

    actions_per_user_day: float = 2.0
    """Mean actions per user and day over the population."""
    activity_alpha: float = 1.3
    """Pareto shape of per-user activity rates; smaller is more skewed."""
    max_actions_per_user_day: float = 150.0
    """Cap of a single user's expected actions per day (people, not bots)."""

    follow_median: float = 40.0
    """Median size of a user's follow set (lognormal)."""
    follow_sigma: float = 0.8
    """Lognormal sigma of follow-set sizes."""
    follow_min: int = 3
    """Smallest follow set."""
    follow_max: int = 500
    """Largest follow set (also at most all other users)."""
    follow_preference: float = 0.7
    """A user is followed with probability ∝ followers ** follow_preference."""
    closeness: float = 1.0
    """Zipf exponent over a user's follow set: engagement concentrates on a few accounts."""

    hashtag_vocabulary: int = 1000
    """Number of hashtags, ``topic1`` … ``topic1000``."""
    hashtag_zipf: float = 1.1
    """Zipf exponent of hashtag popularity."""
    favourite_hashtags_max: int = 3
    """Each user has 1 … this many favourite hashtags."""
    tweet_hashtag_probability: float = 0.8
    """A tweet carries a hashtag with this probability."""
    second_hashtag_probability: float = 0.2
    """A tweet with a hashtag carries a second, distinct one with this probability."""
    off_topic_probability: float = 0.1
    """A hashtag is drawn from the whole vocabulary instead of the user's favourites."""
    comment_hashtag_probability: float = 0.3
    """A quote or reply carries an own hashtag with this probability."""

    tweet_weight: float = 0.40
    """Relative frequency of ``tweet`` actions."""
    retweet_weight: float = 0.30
    """Relative frequency of ``retweet`` actions."""
    quote_weight: float = 0.05
    """Relative frequency of ``quote`` actions."""
    reply_weight: float = 0.12
    """Relative frequency of ``reply`` actions."""
    mention_weight: float = 0.13
    """Relative frequency of ``mention`` actions."""
    recent_tweets: int = 5
    """How many of an author's latest tweets and quotes are still engaged with."""
    target_attempts: int = 4
    """Followed accounts tried for an engageable tweet before tweeting instead."""

    reply_back_probability: float = 0.04
    """Chance that a reply gets a reply back from the replied-to author (≈ 4 % of the engaged
    pairs end up reciprocal; without reply-backs it is under 1 %)."""
    reply_back_mean_minutes: float = 20.0
    """Mean delay of a reply back (exponential)."""
    reply_back_max_hours: float = 6.0
    """Longest delay of a reply back."""

    diurnal_amplitude: float = 0.5
    """Day/night swing of activity: hourly rate ∝ 1 + a·cos(…); 0 is flat."""
    diurnal_peak_hour: int = 15
    """UTC hour of peak activity."""

    def __post_init__(self) -> None:
        if self.users < 2 or self.days < 1:
            raise ValueError("need at least 2 users and 1 day")
        unknown = sorted(set(self.scenarios) - set(SCENARIOS))
        if unknown:
            raise ValueError(f"unknown scenarios {unknown}; expected some of {tuple(SCENARIOS)}")
        if len(set(self.scenarios)) != len(self.scenarios):
            raise ValueError("each scenario can be injected once")
        if not 0 <= self.diurnal_amplitude < 1:
            raise ValueError("diurnal_amplitude must be in [0, 1)")

    @property
    def end_ms(self) -> int:
        """End of the span (exclusive)."""
        return self.start_ms + self.days * DAY_MS
