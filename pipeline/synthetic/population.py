"""The static part of the background: who exists, how big, how active, who follows whom.

Drawn from its own generator (``"<seed>/population"``), so activity and scenarios can change
without moving a single follower count.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.synthetic.config import GeneratorConfig

__all__ = [
    "Population",
    "build_population",
    "hashtag_vocabulary",
    "user_ids",
    "zipf_cum_weights",
]

ACTIVITY_FIT_ROUNDS = 100
ACTIVITY_FIT_TOLERANCE = 1e-6
"""Fitting the activity rates' scale under the per-user cap stops this close to the mean."""


def user_ids(users: int) -> list[str]:
    """Background user ids ``u0001`` … (zero-padded to at least four digits)."""
    width = max(4, len(str(users)))
    return [f"u{i:0{width}d}" for i in range(1, users + 1)]


@dataclass(frozen=True, slots=True)
class Population:
    """The static part of the background: who exists, how big, how active, who follows whom."""

    user_ids: tuple[str, ...]
    followers: tuple[int, ...]
    """Follower count of each user (constant over the span)."""
    activity: tuple[float, ...]
    """Expected actions per day of each user."""
    follows: tuple[tuple[int, ...], ...]
    """Indices of the accounts each user follows, closest first."""
    follow_cum_weights: tuple[tuple[float, ...], ...]
    """Cumulative engagement weights over each follow set (Zipf by closeness)."""
    favourites: tuple[tuple[str, ...], ...]
    """Favourite hashtags of each user."""


def build_population(config: GeneratorConfig) -> Population:
    """Draw the population for ``config`` (depends only on the seed and population knobs)."""
    rng = random.Random(f"{config.seed}/population")
    everyone = range(config.users)
    followers = tuple(
        min(config.follower_max, round(config.follower_median * rng.lognormvariate(0.0, sigma)))
        for sigma in [config.follower_sigma] * config.users
    )
    activity = _activity_rates(
        [rng.paretovariate(config.activity_alpha) for _ in everyone],
        config.actions_per_user_day,
        config.max_actions_per_user_day,
    )
    follows = _follow_sets(config, followers, rng)
    follow_cum_weights = tuple(
        tuple(itertools.accumulate(1.0 / (rank + 1) ** config.closeness for rank in range(len(f))))
        for f in follows
    )
    vocabulary = hashtag_vocabulary(config)
    zipf = zipf_cum_weights(config)
    favourites = tuple(
        tuple(dict.fromkeys(rng.choices(vocabulary, cum_weights=zipf, k=rng.randint(1, top))))
        for top in [config.favourite_hashtags_max] * config.users
    )
    return Population(
        tuple(user_ids(config.users)), followers, activity, follows, follow_cum_weights, favourites
    )


def _follow_sets(
    config: GeneratorConfig, followers: Sequence[int], rng: random.Random
) -> tuple[tuple[int, ...], ...]:
    """Each user's follow set: lognormal size, accounts drawn ∝ followers ** preference, then
    shuffled so that closeness (the order) does not depend on popularity."""
    everyone = range(config.users)
    popularity = list(itertools.accumulate((f + 1) ** config.follow_preference for f in followers))
    follows: list[tuple[int, ...]] = []
    for me in everyone:
        size = round(config.follow_median * rng.lognormvariate(0.0, config.follow_sigma))
        size = max(config.follow_min, min(size, config.follow_max, config.users - 1))
        chosen: dict[int, None] = {}
        while len(chosen) < size:
            for other in rng.choices(everyone, cum_weights=popularity, k=size):
                if other != me and len(chosen) < size:
                    chosen[other] = None
        follow_set = list(chosen)
        rng.shuffle(follow_set)
        follows.append(tuple(follow_set))
    return tuple(follows)


def _activity_rates(raw: Sequence[float], mean: float, cap: float) -> tuple[float, ...]:
    """Scale ``raw`` weights to rates with the given ``mean`` when each is capped at ``cap``.

    ``sum(min(cap, s·r))`` is concave in ``s``, so ``s ← s · target / total`` climbs to the
    fixed point from below without overshooting.
    """
    target = mean * len(raw)
    if cap * len(raw) <= target:
        raise ValueError("max_actions_per_user_day is below actions_per_user_day")
    scale = target / sum(raw)
    for _ in range(ACTIVITY_FIT_ROUNDS):
        total = sum(min(cap, scale * r) for r in raw)
        if total >= target * (1 - ACTIVITY_FIT_TOLERANCE):
            break
        scale *= target / total
    return tuple(min(cap, scale * r) for r in raw)


def hashtag_vocabulary(config: GeneratorConfig) -> list[str]:
    """``topic1`` … ``topicN``, most popular first."""
    return [f"topic{k}" for k in range(1, config.hashtag_vocabulary + 1)]


def zipf_cum_weights(config: GeneratorConfig) -> list[float]:
    """Cumulative Zipf weights over ``hashtag_vocabulary``, for ``random.choices``."""
    ranks = range(1, config.hashtag_vocabulary + 1)
    return list(itertools.accumulate(1.0 / k**config.hashtag_zipf for k in ranks))
