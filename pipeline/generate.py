"""A seeded synthetic stream of ``influence.event.v1`` events, with injectable scenarios.

The background is a steady-state population, not a burst:

- users ``u0001`` … with lognormal follower counts (median ~200, a few with 10k-1M);
- Pareto-distributed activity (most users act rarely, a few many times a day), about two
  actions per user-day on average, spread over the days with a diurnal rhythm;
- each user follows a set of accounts chosen preferentially by follower count and engages
  mostly with a few of them, so pairs repeat over days like real timelines;
- each user has 1-3 favourite hashtags from a Zipf-distributed vocabulary (``topic1`` is the
  most popular);
- actions: ``tweet``; ``retweet``/``quote``/``reply`` of a recent tweet (or quote) of a followed
  account; ``mention`` of a followed account. Some replies get a reply back, so a few percent of
  pairs are reciprocal. Nobody engages themself.

Scenarios from ``pipeline.scenarios`` are merged into the sorted output. Everything is derived
from ``GeneratorConfig.seed``: the same config gives the same events, byte for byte.

    python -m pipeline.generate --users 2000 --days 60 --scenario ring --out events.jsonl
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import orjson

from pipeline.scenarios import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    SCENARIOS,
    Event,
    Tweet,
    event_order,
    inject,
    make_event,
)

__all__ = [
    "GeneratorConfig",
    "Population",
    "build_population",
    "generate",
    "main",
    "user_ids",
    "write_jsonl",
]

HOURS_PER_DAY = 24
KINDS = ("tweet", "retweet", "quote", "reply", "mention")
"""Background action kinds, in the order of ``GeneratorConfig``'s ``*_weight`` fields."""
ACTIVITY_FIT_ROUNDS = 100
ACTIVITY_FIT_TOLERANCE = 1e-6
"""Fitting the activity rates' scale under the per-user cap stops this close to the mean."""
WRITE_CHUNK = 4096
"""Events serialised per ``write`` call in ``write_jsonl``."""


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
    """Names from ``scenarios.SCENARIOS``, injected at their default placements."""

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
            raise ValueError(f"unknown scenarios {unknown}; expected some of {SCENARIOS}")
        if len(set(self.scenarios)) != len(self.scenarios):
            raise ValueError("each scenario can be injected once")
        if not 0 <= self.diurnal_amplitude < 1:
            raise ValueError("diurnal_amplitude must be in [0, 1)")

    @property
    def end_ms(self) -> int:
        """End of the span (exclusive)."""
        return self.start_ms + self.days * DAY_MS


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
    vocabulary = _hashtag_vocabulary(config)
    zipf = _zipf_cum_weights(config)
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


def _hashtag_vocabulary(config: GeneratorConfig) -> list[str]:
    return [f"topic{k}" for k in range(1, config.hashtag_vocabulary + 1)]


def _zipf_cum_weights(config: GeneratorConfig) -> list[float]:
    ranks = range(1, config.hashtag_vocabulary + 1)
    return list(itertools.accumulate(1.0 / k**config.hashtag_zipf for k in ranks))


class _Background:
    """Simulates the population day by day, in event-time order (so every engaged tweet exists
    before it is engaged). Reply-backs that fall after the current day wait for the next one."""

    def __init__(self, config: GeneratorConfig, population: Population) -> None:
        self._config = config
        self._pop = population
        self._index = {user: i for i, user in enumerate(population.user_ids)}
        self._rng = random.Random(f"{config.seed}/activity")
        self._recent: list[deque[Tweet]] = [
            deque(maxlen=config.recent_tweets) for _ in population.user_ids
        ]
        self._vocabulary = _hashtag_vocabulary(config)
        self._zipf = _zipf_cum_weights(config)
        self._kind_cum = list(
            itertools.accumulate(
                (
                    config.tweet_weight,
                    config.retweet_weight,
                    config.quote_weight,
                    config.reply_weight,
                    config.mention_weight,
                )
            )
        )
        self._activity_cum = list(itertools.accumulate(population.activity))
        self._hour_cum = list(
            itertools.accumulate(
                1.0
                + config.diurnal_amplitude
                * math.cos(2 * math.pi * (h + 0.5 - config.diurnal_peak_hour) / HOURS_PER_DAY)
                for h in range(HOURS_PER_DAY)
            )
        )
        self._events = itertools.count(1)
        self._tweets = itertools.count(1)
        self._pending: list[tuple[int, str, Event]] = []
        """Events made but not yet yielded, as ``(ts, id, event)``: the current day's, and
        reply-backs that fall into a later day."""

    def events(self) -> Iterator[Event]:
        """All background events of the span, sorted by ``(ts, id)``."""
        expected_per_day = sum(self._pop.activity)
        for day in range(self._config.days):
            day_ms = self._config.start_ms + day * DAY_MS
            # Poisson-like day totals (normal approximation): steady, with day-to-day noise.
            count = max(0, round(self._rng.gauss(expected_per_day, math.sqrt(expected_per_day))))
            self._simulate_day(day_ms, count)
            self._pending.sort(key=lambda item: (item[0], item[1]))
            cut = bisect.bisect_left(self._pending, day_ms + DAY_MS, key=lambda item: item[0])
            ready, self._pending = self._pending[:cut], self._pending[cut:]
            yield from (event for _, _, event in ready)
        # Reply-backs after the end of the span are dropped.

    def _simulate_day(self, day_ms: int, count: int) -> None:
        rng = self._rng
        actors = rng.choices(
            range(len(self._activity_cum)), cum_weights=self._activity_cum, k=count
        )
        kinds = rng.choices(KINDS, cum_weights=self._kind_cum, k=count)
        hours = rng.choices(range(HOURS_PER_DAY), cum_weights=self._hour_cum, k=count)
        times = sorted(day_ms + h * HOUR_MS + int(rng.random() * HOUR_MS) for h in hours)
        for ts, actor, kind in zip(times, actors, kinds, strict=True):
            if kind == "mention":
                mentioned = self._pop.user_ids[self._pick_followed(actor)]
                self._emit("mention", ts, actor, target=mentioned)
                continue
            ref = None if kind == "tweet" else self._pick_tweet(actor)
            if ref is None:
                self._tweet(ts, actor)
            elif kind == "retweet":
                self._emit("retweet", ts, actor, target=ref.author, ref=ref)
            else:
                self._comment(kind, ts, actor, ref)

    def _tweet(self, ts: int, actor: int) -> None:
        hashtags: list[str] = []
        if self._rng.random() < self._config.tweet_hashtag_probability:
            hashtags.append(self._hashtag(actor))
            if self._rng.random() < self._config.second_hashtag_probability:
                second = self._hashtag(actor)
                if second != hashtags[0]:
                    hashtags.append(second)
        tweet = Tweet(self._tweet_id(), self._pop.user_ids[actor], ts, tuple(hashtags))
        self._recent[actor].append(tweet)
        self._emit("tweet", ts, actor, tweet_id=tweet.tweet_id, hashtags=tweet.hashtags)

    def _comment(self, kind: str, ts: int, actor: int, ref: Tweet) -> None:
        """A quote or reply of ``ref``; quotes can be engaged later, replies can get an answer."""
        own: tuple[str, ...] = ()
        if self._rng.random() < self._config.comment_hashtag_probability:
            own = (self._hashtag(actor),)
        tweet = Tweet(self._tweet_id(), self._pop.user_ids[actor], ts, own)
        self._emit(
            kind, ts, actor, target=ref.author, ref=ref, tweet_id=tweet.tweet_id, hashtags=own
        )
        if kind == "quote":
            self._recent[actor].append(tweet)
        elif self._rng.random() < self._config.reply_back_probability:
            self._reply_back(tweet, ref.author)

    def _reply_back(self, reply: Tweet, author: str) -> None:
        """``author`` answers ``reply`` a little later (this is where reciprocity comes from)."""
        delay_minutes = self._rng.expovariate(1.0 / self._config.reply_back_mean_minutes)
        delay_ms = 1 + int(
            min(delay_minutes * MINUTE_MS, self._config.reply_back_max_hours * HOUR_MS)
        )
        self._emit(
            "reply",
            reply.ts + delay_ms,
            self._index[author],
            target=reply.author,
            ref=reply,
            tweet_id=self._tweet_id(),
            hashtags=(),
        )

    def _emit(
        self,
        kind: str,
        ts: int,
        actor: int,
        *,
        target: str | None = None,
        ref: Tweet | None = None,
        tweet_id: str | None = None,
        hashtags: Sequence[str] | None = None,
    ) -> None:
        """Record one event by the user with index ``actor``, with their follower count."""
        event_id = f"e{next(self._events):09d}"
        event = make_event(
            event_id,
            kind,
            ts,
            self._pop.user_ids[actor],
            self._pop.followers[actor],
            target=target,
            tweet_id=tweet_id,
            ref=ref,
            hashtags=hashtags,
        )
        self._pending.append((ts, event_id, event))

    def _tweet_id(self) -> str:
        return f"t{next(self._tweets):09d}"

    def _hashtag(self, actor: int) -> str:
        if self._rng.random() < self._config.off_topic_probability:
            return self._rng.choices(self._vocabulary, cum_weights=self._zipf)[0]
        return self._rng.choice(self._pop.favourites[actor])

    def _pick_followed(self, actor: int) -> int:
        follows = self._pop.follows[actor]
        cum = self._pop.follow_cum_weights[actor]
        return follows[bisect.bisect(cum, self._rng.random() * cum[-1], 0, len(cum) - 1)]

    def _pick_tweet(self, actor: int) -> Tweet | None:
        for _ in range(self._config.target_attempts):
            recent = self._recent[self._pick_followed(actor)]
            if recent:
                return self._rng.choice(recent)
        return None


def generate(config: GeneratorConfig) -> Iterator[Event]:
    """v1 event dicts (INTERFACES.md schema), sorted by ``(ts, id)``, with unique string ids:
    the background population merged with ``config.scenarios`` at their default placements.

    Background users that engage in a scenario carry their background follower count.
    """
    population = build_population(config)
    background = _Background(config, population).events()
    if not config.scenarios:
        return background
    followers = dict(zip(population.user_ids, population.followers, strict=True))
    injected: list[Event] = []
    for name in config.scenarios:
        injected += inject(name, population.user_ids, config)
    for event in injected:
        actor = event["actor"]
        if isinstance(actor, str) and actor in followers:
            event["followers"] = followers[actor]
    injected.sort(key=event_order)
    return heapq.merge(background, injected, key=event_order)


def write_jsonl(events: Iterable[Mapping[str, object]], out: BinaryIO) -> int:
    """Write ``events`` as JSON lines (orjson, UTF-8) to ``out``; returns how many."""
    count = 0
    chunk: list[bytes] = []
    for event in events:
        chunk.append(orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE))
        if len(chunk) == WRITE_CHUNK:
            out.write(b"".join(chunk))
            count += len(chunk)
            chunk.clear()
    out.write(b"".join(chunk))
    return count + len(chunk)


if __name__ == "__main__":  # `python -m pipeline.generate` is `influence generate`
    from pipeline.cli import main

    raise SystemExit(main(["generate", *sys.argv[1:]]))
