"""The background population's activity, simulated day by day.

- Pareto-distributed activity (most users act rarely, a few many times a day), about two
  actions per user-day on average, spread over the days with a diurnal rhythm;
- each user engages mostly with a few of the accounts they follow, so pairs repeat over days
  like real timelines;
- actions: ``tweet``; ``retweet``/``quote``/``reply`` of a recent tweet (or quote) of a followed
  account; ``mention`` of a followed account. Some replies get a reply back, so a few percent of
  pairs are reciprocal. Nobody engages themself.

Every choice comes from one generator seeded ``"<seed>/activity"``, consumed in a fixed order:
reordering two draws here changes every seeded stream.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections import deque
from collections.abc import Iterator, Sequence

from pipeline.synthetic.config import GeneratorConfig
from pipeline.synthetic.events import DAY_MS, HOUR_MS, MINUTE_MS, Event, Tweet, make_event
from pipeline.synthetic.population import Population, hashtag_vocabulary, zipf_cum_weights

__all__ = ["KINDS", "Background"]

HOURS_PER_DAY = 24
KINDS = ("tweet", "retweet", "quote", "reply", "mention")
"""Background action kinds, in the order of ``GeneratorConfig``'s ``*_weight`` fields."""


class Background:
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
        self._vocabulary = hashtag_vocabulary(config)
        self._zipf = zipf_cum_weights(config)
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
