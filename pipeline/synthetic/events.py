"""Building ``influence.event.v1`` events: the pieces every scenario and the background share.

A scenario's events are dicts ready for JSON (schema in the design notes, INTERFACES.md). Ids
are ``"<prefix>:e000001"`` / ``"<prefix>:t000001"`` per builder; background ids contain no
colon, so the two never clash. The field order of ``make_event`` is the order of the bytes
``influence generate`` writes: changing it changes every seeded stream.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DAY_MS",
    "DEFAULT_ENGAGER_FOLLOWERS",
    "HOUR_MS",
    "MINUTE_MS",
    "SECOND_MS",
    "Event",
    "EventBuilder",
    "Tweet",
    "distinct_pool",
    "event_order",
    "make_event",
    "stratified_times",
]

Event = dict[str, object]
"""One ``influence.event.v1`` event as a JSON-ready dict."""

SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

DEFAULT_ENGAGER_FOLLOWERS = 200
"""Placeholder follower count for background engagers (the background median): a scenario
cannot know their real counts, ``generate()`` rewrites them."""


@dataclass(frozen=True, slots=True)
class Tweet:
    """A posted tweet that others can retweet, quote or reply to."""

    tweet_id: str
    author: str
    ts: int
    hashtags: tuple[str, ...]


def make_event(
    event_id: str,
    kind: str,
    ts: int,
    actor: str,
    followers: int,
    *,
    target: str | None = None,
    tweet_id: str | None = None,
    ref: Tweet | None = None,
    hashtags: Sequence[str] | None = None,
) -> Event:
    """One v1 event. ``ref`` is the engaged tweet (sets ``ref_tweet_id`` and ``ref_hashtags``)."""
    event: Event = {"id": event_id, "kind": kind, "ts": ts, "actor": actor}
    if target is not None:
        event["target"] = target
    if tweet_id is not None:
        event["tweet_id"] = tweet_id
    if ref is not None:
        event["ref_tweet_id"] = ref.tweet_id
    if hashtags is not None:
        event["hashtags"] = list(hashtags)
    if ref is not None:
        event["ref_hashtags"] = list(ref.hashtags)
    event["followers"] = followers
    return event


def event_order(event: Event) -> tuple[int, str]:
    """Sort key of the stream: ``(ts, id)``."""
    ts, event_id = event["ts"], event["id"]
    assert isinstance(ts, int) and isinstance(event_id, str)
    return ts, event_id


class EventBuilder:
    """Collects one scenario call's events, with prefixed sequential ids."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._events: list[Event] = []
        self._tweets = 0

    def _event_id(self) -> str:
        return f"{self._prefix}:e{len(self._events) + 1:06d}"

    def _tweet_id(self) -> str:
        self._tweets += 1
        return f"{self._prefix}:t{self._tweets:06d}"

    def tweet(self, author: str, ts: int, hashtags: Sequence[str], followers: int) -> Tweet:
        """``author`` posts an original tweet; returns it so others can engage with it."""
        tweet = Tweet(self._tweet_id(), author, ts, tuple(hashtags))
        self._events.append(
            make_event(
                self._event_id(),
                "tweet",
                ts,
                author,
                followers,
                tweet_id=tweet.tweet_id,
                hashtags=tweet.hashtags,
            )
        )
        return tweet

    def engage(
        self, kind: str, ts: int, actor: str, followers: int, *, target: str, ref: Tweet | None
    ) -> None:
        """``actor`` engages ``target``: a mention, or a retweet/quote/reply of ``ref``."""
        tweet_id = self._tweet_id() if kind in ("quote", "reply") else None
        own_hashtags = () if tweet_id is not None else None
        self._events.append(
            make_event(
                self._event_id(),
                kind,
                ts,
                actor,
                followers,
                target=target,
                tweet_id=tweet_id,
                ref=ref,
                hashtags=own_hashtags,
            )
        )

    def events(self) -> list[Event]:
        """The collected events sorted by ``(ts, id)``."""
        return sorted(self._events, key=event_order)


def stratified_times(rng: random.Random, start_ms: int, span_ms: int, count: int) -> list[int]:
    """``count`` increasing times, one uniformly inside each of ``count`` equal slices: evenly
    spread without looking scheduled."""
    return [start_ms + int((k + rng.random()) * span_ms / count) for k in range(count)]


def distinct_pool(engagers: Sequence[str], needed: int, what: str) -> list[str]:
    """``engagers`` without repeats, in order; at least ``needed`` of them or ``ValueError``
    (a scenario that promises N distinct engagers must not quietly deliver fewer)."""
    pool = list(dict.fromkeys(engagers))
    if len(pool) < needed:
        raise ValueError(f"{what} needs at least {needed} distinct engagers, got {len(pool)}")
    return pool
