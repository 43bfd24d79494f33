"""Typed event records: the v1 input event and the engagement passed from actor to target.

`parse_event` validates a decoded JSON object against schema ``influence.event.v1``
(INTERFACES.md) and returns either an `Event` or an `Invalid` carrying a machine-readable
reason, so bad input becomes data rather than an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

EVENT_KINDS = ("tweet", "retweet", "quote", "reply", "mention")
ENGAGEMENT_KINDS = ("retweet", "quote", "reply", "mention")
"""Engagement kinds in the fixed order of every per-kind array in the state, the snapshot's
`counts` and `windows`, and the compiled core's (native/): the one list they all follow."""
ENGAGEMENT_KIND_INDEX = {kind: index for index, kind in enumerate(ENGAGEMENT_KINDS)}
"""Index of each engagement kind in per-kind arrays."""

SOURCES = ("tweets", "retweets", "mentions")
"""The three input streams (INTERFACES.md), in the order of the per-source actor counters
(§12). The pipeline carries each on one input topic, `Topics.inputs` in this order."""
SOURCE_FOR_KIND = {"tweet": 0, "quote": 0, "reply": 0, "retweet": 1, "mention": 2}
"""The source (an index into `SOURCES`) each kind travels on; order-dependent actor counters
are kept per source (§12), so this table decides which counter an action counts in."""

MAX_ID_LENGTH = 256
MAX_HASHTAGS = 64
MIN_TS_MS = 946_684_800_000
"""2000-01-01T00:00:00Z: no social network's history starts earlier."""
MAX_TS_MS = 3_471_292_799_999
"""2079-12-31T23:59:59.999Z. Forward decay keeps each user's sums against a landmark (the first
day the user was seen), so exp(rate * span) must stay finite for any two events: with the
fastest landmark rate (30-day half-life) that allows 84 years between them, and these 80 years
of accepted event time keep every span inside it (beyond, sums would overflow to infinity).
Moving the window later needs re-landmarking, not a bigger number here."""
MAX_FOLLOWERS = 2**63 - 1
"""A follower count beyond any real account (and beyond a 64-bit integer) is not data."""


class Event(NamedTuple):
    """One v1 input event (an action by `actor`, engaging `target` unless it is a tweet)."""

    id: str
    kind: str
    ts: int
    actor: str
    target: str | None = None
    tweet_id: str | None = None
    ref_tweet_id: str | None = None
    hashtags: tuple[str, ...] = ()
    ref_hashtags: tuple[str, ...] = ()
    followers: int | None = None


class Engagement(NamedTuple):
    """What the actor's side sends to the target's side: one engagement with its discounts.

    The contribution is ``weight * selectivity * pair * automation`` (§2); the factors travel
    separately so the target can explain what each discount removed.
    """

    id: str
    kind: int
    ts: int
    actor: str
    target: str
    weight: float
    selectivity: float
    pair: float
    automation: float
    ref_tweet_id: str | None = None
    ref_hashtags: tuple[str, ...] = ()

    @property
    def contribution(self) -> float:
        return self.weight * self.selectivity * self.pair * self.automation


@dataclass(frozen=True, slots=True)
class Invalid:
    """Why an input could not be read as a v1 event: ``reason`` is a stable machine code."""

    reason: str
    detail: str


def _identifier(obj: Mapping[str, object], key: str, required: bool) -> str | Invalid | None:
    value = obj.get(key)
    if value is None:
        return Invalid("missing_field", f"{key} is required") if required else None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return Invalid("wrong_type", f"{key} must be a string")
    if not value or len(value) > MAX_ID_LENGTH:
        return Invalid("bad_value", f"{key} must have 1..{MAX_ID_LENGTH} characters")
    return value


def _tags(obj: Mapping[str, object], key: str) -> tuple[str, ...] | Invalid:
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        return Invalid("wrong_type", f"{key} must be a list of strings")
    if len(value) > MAX_HASHTAGS or any(len(tag) > MAX_ID_LENGTH for tag in value):
        return Invalid("oversize", f"{key} has too many or too long entries")
    return tuple(dict.fromkeys(tag.lower().lstrip("#") for tag in value if tag.strip("#")))


def parse_event(obj: object) -> Event | Invalid:
    """Validates one decoded JSON value as a v1 event."""
    if type(obj) is dict:
        event = _plain_event(obj)
        if event is not None:
            return event
    return _checked_event(obj)


def _plain_event(obj: dict[str, object]) -> Event | None:
    """The usual event, accepted in one pass: string ids, no tags, no follower count.

    None for anything else, which `_checked_event` then accepts or rejects with its reason;
    what this accepts, `_checked_event` accepts as the same event.
    """
    kind, ts = obj.get("kind"), obj.get("ts")
    if type(kind) is not str or kind not in EVENT_KINDS or type(ts) is not int:
        return None
    if not MIN_TS_MS <= ts <= MAX_TS_MS or "hashtags" in obj or "ref_hashtags" in obj:
        return None
    event_id, actor, target = obj.get("id"), obj.get("actor"), obj.get("target")
    tweet_id, ref_tweet_id = obj.get("tweet_id"), obj.get("ref_tweet_id")
    for value in (event_id, actor, target, tweet_id, ref_tweet_id):
        if value is not None and (type(value) is not str or not 0 < len(value) <= MAX_ID_LENGTH):
            return None
    if event_id is None or actor is None or (target is None and kind != "tweet"):
        return None
    followers = obj.get("followers")
    if followers is not None and (
        type(followers) is not int or not 0 <= followers <= MAX_FOLLOWERS
    ):
        return None
    if kind == "tweet":
        target = None  # a tweet engages no one, whatever the producer sent
    return Event._make(
        (event_id, kind, ts, actor, target, tweet_id, ref_tweet_id, (), (), followers)
    )


def _checked_event(obj: object) -> Event | Invalid:
    """Every check of schema ``influence.event.v1``, each with its own reason."""
    if not isinstance(obj, Mapping):
        return Invalid("not_an_object", "an event must be a JSON object")
    kind = obj.get("kind")
    if not isinstance(kind, str):
        return Invalid("missing_field" if kind is None else "wrong_type", "kind must be a string")
    if kind not in EVENT_KINDS:
        return Invalid("unknown_kind", f"kind {kind[:40]!r} is not one of {EVENT_KINDS}")
    ts = obj.get("ts")
    if ts is None:
        return Invalid("missing_field", "ts is required")
    if isinstance(ts, bool) or not isinstance(ts, int):
        return Invalid("wrong_type", "ts must be an integer (ms since the epoch)")
    if not MIN_TS_MS <= ts <= MAX_TS_MS:
        return Invalid("bad_value", "ts is out of range")
    fields: dict[str, str | None] = {}
    for key, required in (
        ("id", True),
        ("actor", True),
        ("target", kind != "tweet"),
        ("tweet_id", False),
        ("ref_tweet_id", False),
    ):
        value = _identifier(obj, key, required)
        if isinstance(value, Invalid):
            return value
        fields[key] = value
    hashtags = _tags(obj, "hashtags")
    if isinstance(hashtags, Invalid):
        return hashtags
    ref_hashtags = _tags(obj, "ref_hashtags")
    if isinstance(ref_hashtags, Invalid):
        return ref_hashtags
    followers = obj.get("followers")
    if followers is not None and (
        isinstance(followers, bool) or not isinstance(followers, int) or followers < 0
    ):
        return Invalid("wrong_type", "followers must be a non-negative integer")
    if followers is not None and followers > MAX_FOLLOWERS:
        return Invalid("bad_value", "followers is out of range")
    event_id, actor = fields["id"], fields["actor"]
    assert event_id is not None and actor is not None
    return Event(
        id=event_id,
        kind=kind,
        ts=ts,
        actor=actor,
        target=None if kind == "tweet" else fields["target"],
        tweet_id=fields["tweet_id"],
        ref_tweet_id=fields["ref_tweet_id"],
        hashtags=hashtags,
        ref_hashtags=ref_hashtags,
        followers=followers,
    )


def event_to_dict(event: Event) -> dict[str, object]:
    """The v1 JSON object for an event, omitting absent optional fields."""
    out: dict[str, object] = {"id": event.id, "kind": event.kind, "ts": event.ts}
    out["actor"] = event.actor
    for key in ("target", "tweet_id", "ref_tweet_id"):
        value = getattr(event, key)
        if value is not None:
            out[key] = value
    if event.hashtags:
        out["hashtags"] = list(event.hashtags)
    if event.ref_hashtags:
        out["ref_hashtags"] = list(event.ref_hashtags)
    if event.followers is not None:
        out["followers"] = event.followers
    return out
