"""Injectable attack and edge-case scenarios for the synthetic event stream.

Each scenario is a pure function that returns ``influence.event.v1`` dicts (schema in the
design notes, INTERFACES.md) for explicitly named users, at explicit times, sorted by ``(ts, id)``.
Randomness comes only from the ``random.Random`` passed in (or from a ``seed`` argument), so a
scenario is reproducible on its own. The scenarios are the acceptance cases of the scoring model
(SCORING.md):

- ``ring``: accounts that retweet each other on a timer (§3, reciprocity).
- ``party``: a one-night "Twitter party" of name-drops (§4, bursts).
- ``vacation``: a normal life followed by a week of silence (§5, grace).
- ``viral-retweet``: a topic earned by one viral retweet vs. a real topical author (§8).
- ``new-account``: an established account vs. a new, barely used one (§6, shrinkage).

``inject`` places a scenario at its default time inside a generator config's span; that is what
``GeneratorConfig.scenarios`` and the ``--scenario`` option use. Event and tweet ids are
``"<prefix>:e000001"`` / ``"<prefix>:t000001"``; background ids contain no colon, so they never
clash. Engagers passed in are background users whose follower counts the scenario cannot know:
their events carry ``DEFAULT_ENGAGER_FOLLOWERS`` and ``generate()`` rewrites them.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.generate import GeneratorConfig

__all__ = [
    "ESTABLISHED",
    "NEWBIE",
    "PARTY_HOST",
    "SCENARIOS",
    "TOPICAL_AUTHOR",
    "VACATION_USER",
    "VIRAL_AUTHOR",
    "VIRAL_RETWEETER",
    "Event",
    "host_engagement_events",
    "inject",
    "new_account_events",
    "party_events",
    "ring_events",
    "topical_author_events",
    "vacation_events",
    "viral_retweet_events",
]

Event = dict[str, object]
"""One ``influence.event.v1`` event as a JSON-ready dict."""

SCENARIOS = ("ring", "party", "vacation", "viral-retweet", "new-account")
"""Scenario names accepted by ``inject`` and ``GeneratorConfig.scenarios``."""

SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

# --- user ids (module constants; ring and party accounts are numbered, see below) -------------
PARTY_HOST = "party-host"
"""The host of the injected party; has a normal engaged life before and after it."""
VACATION_USER = "vacationer"
"""The user who goes silent for the last week of the injected span."""
VIRAL_RETWEETER = "viral-retweeter"
"""Retweets one #amywinehouse tweet, which then goes viral through their retweet."""
VIRAL_AUTHOR = "viral-author"
"""Author of the #amywinehouse tweet that ``VIRAL_RETWEETER`` retweets."""
TOPICAL_AUTHOR = "topical-author"
"""Posts about #amywinehouse for days and is engaged by many: deserves the topic."""
ESTABLISHED = "established"
"""Established account: 3,000 followers, engaged by 200 distinct users over 30 days."""
NEWBIE = "newbie"
"""New, barely used account: 200 followers, 20 engagements from 3 accounts at the end."""
RING_PREFIX = "ring"
"""Ring members are ``ring-00`` … ``ring-19`` (``f"{prefix}-{i:02d}"``)."""
PARTY_PREFIX = "party"
"""Party guests are ``party-000`` … ``party-499`` (``f"{prefix}-{i:03d}"``)."""

# --- follower counts carried by the scenario users' own events -----------------------------
DEFAULT_ENGAGER_FOLLOWERS = 200
"""Placeholder follower count for background engagers (the background median)."""
RING_FOLLOWERS = 150
"""Each ring member's follower count: small accounts pooling their reach."""
PARTY_GUEST_FOLLOWERS = 30
"""Each party guest's follower count: fresh accounts."""
HOST_FOLLOWERS = 1_000
"""Default follower count of a host in ``host_engagement_events``."""
PARTY_HOST_FOLLOWERS = 2_000
"""The party host is a mid-scale account."""
VACATION_USER_FOLLOWERS = 800
VIRAL_RETWEETER_FOLLOWERS = 300
VIRAL_AUTHOR_FOLLOWERS = 5_000
TOPICAL_AUTHOR_FOLLOWERS = 800
ESTABLISHED_FOLLOWERS = 3_000
NEWBIE_FOLLOWERS = 200

# --- shapes ----------------------------------------------------------------------------------
MIN_ENGAGER_POOL = 20
"""Engagement of a host or topical author must come from at least this many distinct accounts."""
RING_HASHTAG = "teamfollowback"
"""Hashtag of the ring members' own tweets."""
RING_RETWEET_DELAY_MS = 5 * MINUTE_MS
"""Retweets of a round start this long after the round's tweets."""
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
ESTABLISHED_ENGAGERS = 200
ESTABLISHED_PER_DAY = 10.0
"""Engagements a day of the established account (300 in 30 days: every one of 200 engages)."""
NEWBIE_ENGAGEMENTS = 20
NEWBIE_ENGAGERS = 3
NEWBIE_DAYS = 3
"""The newbie is active (tweets daily, gets engaged) only in its last three days."""

# --- inject placements -----------------------------------------------------------------------
INJECT_LIFE_ENGAGERS = 40
"""Size of the engager pool of a host's normal life placed by ``inject``."""
INJECT_LIFE_PER_DAY = 3.0
"""Engagements a day in a host's normal life placed by ``inject``."""
INJECT_PARTY_DAYS_BEFORE_END = 15
INJECT_PARTY_HOUR = 19
"""The party starts at 19:00 UTC, 15 days before the end of the span."""
INJECT_VACATION_SILENT_DAYS = 7
INJECT_VIRAL_DAYS_BEFORE_END = 10
INJECT_VIRAL_HOUR = 12
"""The viral tweet is posted at 12:00 UTC, 10 days before the end of the span."""
INJECT_TOPICAL_DAYS = 5
"""The topical author posts on the last 5 days (starting 6 days before the end)."""
INJECT_NEW_ACCOUNT_DAYS = 30
INJECT_MIN_DAYS = {
    "ring": 4,
    "party": INJECT_PARTY_DAYS_BEFORE_END + 1,
    "vacation": INJECT_VACATION_SILENT_DAYS + 7,
    "viral-retweet": INJECT_VIRAL_DAYS_BEFORE_END + 1,
    "new-account": INJECT_NEW_ACCOUNT_DAYS,
}
"""Shortest generator span (days) that fits each scenario's default placement."""
INJECT_MIN_USERS = {
    "ring": 0,
    "party": INJECT_LIFE_ENGAGERS,
    "vacation": INJECT_LIFE_ENGAGERS,
    "viral-retweet": VIRAL_RETWEETS,
    "new-account": ESTABLISHED_ENGAGERS,
}
"""Fewest background users each scenario's default placement draws engagers from."""


# --- v1 event construction -------------------------------------------------------------------
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


class _Builder:
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


def _stratified_times(rng: random.Random, start_ms: int, span_ms: int, count: int) -> list[int]:
    """``count`` increasing times, one uniformly inside each of ``count`` equal slices."""
    return [start_ms + int((k + rng.random()) * span_ms / count) for k in range(count)]


def _distinct_pool(engagers: Sequence[str], needed: int, what: str) -> list[str]:
    pool = list(dict.fromkeys(engagers))
    if len(pool) < needed:
        raise ValueError(f"{what} needs at least {needed} distinct engagers, got {len(pool)}")
    return pool


# --- ring (§3) -------------------------------------------------------------------------------
def ring_members(members: int = 20, prefix: str = RING_PREFIX) -> list[str]:
    """User ids of a ring: ``ring-00`` … ``ring-19`` by default."""
    return [f"{prefix}-{i:02d}" for i in range(members)]


def ring_events(
    start_ms: int,
    *,
    members: int = 20,
    days: int = 4,
    every_hours: int = 2,
    prefix: str = RING_PREFIX,
    followers: int = RING_FOLLOWERS,
) -> list[Event]:
    """A retweet ring: every ``every_hours`` h for ``days`` days, each member tweets once and then
    retweets every other member's latest tweet (round-robin, spread over the round).

    Defaults: 48 rounds x (20 tweets + 20·19 retweets) = 19,200 events; every member retweets
    each of the 19 others 48 times.
    """
    out = _Builder(prefix)
    users = ring_members(members, prefix)
    interval_ms = every_hours * HOUR_MS
    retweets_per_round = members * (members - 1)
    slot_ms = (interval_ms - RING_RETWEET_DELAY_MS) // max(1, retweets_per_round)
    for r in range(days * 24 // every_hours):
        round_ms = start_ms + r * interval_ms
        latest = [
            out.tweet(member, round_ms + i * SECOND_MS, [RING_HASHTAG], followers)
            for i, member in enumerate(users)
        ]
        slot = 0
        for shift in range(1, members):
            for i, member in enumerate(users):
                tweet = latest[(i + shift) % members]
                ts = round_ms + RING_RETWEET_DELAY_MS + slot * slot_ms
                out.engage("retweet", ts, member, followers, target=tweet.author, ref=tweet)
                slot += 1
    return out.events()


# --- a host's normal life (used by party, vacation, new-account) -----------------------------
def _host_life(
    out: _Builder,
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
    times = _stratified_times(rng, first_ms, start_ms + days * DAY_MS - first_ms, count)
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
    pool = _distinct_pool(engagers, MIN_ENGAGER_POOL, "host_engagement_events")
    out = _Builder(prefix if prefix is not None else f"life-{host}-{start_ms}")
    count = round(per_day * days)
    _host_life(
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


# --- party (§4) ------------------------------------------------------------------------------
def party_guests(accounts: int = 500, prefix: str = PARTY_PREFIX) -> list[str]:
    """User ids of the party guests: ``party-000`` … ``party-499`` by default."""
    return [f"{prefix}-{i:03d}" for i in range(accounts)]


def party_events(
    host: str,
    evening_ms: int,
    *,
    mentions: int = 2000,
    accounts: int = 500,
    hours: int = 3,
    prefix: str = PARTY_PREFIX,
    seed: int = 0,
    followers: int = PARTY_GUEST_FOLLOWERS,
) -> list[Event]:
    """A one-night Twitter party: ``accounts`` new accounts mention ``host`` exactly ``mentions``
    times in total (each guest ⌊mentions/accounts⌋ or one more times), all within
    ``[evening_ms, evening_ms + hours)``."""
    if mentions < accounts:
        raise ValueError("a party needs at least one mention per account")
    rng = random.Random(seed)
    out = _Builder(prefix)
    guests = party_guests(accounts, prefix)
    order = [guests[k % accounts] for k in range(mentions)]
    rng.shuffle(order)
    times = _stratified_times(rng, evening_ms, hours * HOUR_MS, mentions)
    for ts, guest in zip(times, order, strict=True):
        out.engage("mention", ts, guest, followers, target=host, ref=None)
    return out.events()


# --- vacation (§5) ---------------------------------------------------------------------------
def vacation_events(
    user: str,
    start_ms: int,
    active_days: int,
    silent_days: int,
    *,
    engagers: Sequence[str],
    rng: random.Random,
    per_day: float = INJECT_LIFE_PER_DAY,
    return_days: int = 0,
    followers: int = VACATION_USER_FOLLOWERS,
) -> list[Event]:
    """A normal engaged life for ``active_days``, then ``silent_days`` in which ``user`` posts
    nothing and receives nothing, then (if ``return_days``) normal life again."""
    events = host_engagement_events(
        user,
        start_ms,
        active_days,
        engagers=engagers,
        per_day=per_day,
        rng=rng,
        followers=followers,
    )
    if return_days > 0:
        events += host_engagement_events(
            user,
            start_ms + (active_days + silent_days) * DAY_MS,
            return_days,
            engagers=engagers,
            per_day=per_day,
            rng=rng,
            followers=followers,
        )
    return events


# --- viral retweet vs. topical author (§8) ---------------------------------------------------
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
    pool = _distinct_pool(engagers, retweets, "viral_retweet_events")
    out = _Builder(prefix)
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
    days: int = 5,
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
    pool = _distinct_pool(engagers, MIN_ENGAGER_POOL, "topical_author_events")
    rng.shuffle(pool)
    out = _Builder(prefix if prefix is not None else f"topic-{author}-{start_ms}")
    engagements = 0
    for day in range(days):
        day_ms = start_ms + day * DAY_MS
        for ts in _stratified_times(rng, day_ms, HOST_TWEET_WINDOW_MS, tweets_per_day):
            tweet = out.tweet(author, ts, [hashtag], followers)
            window = _stratified_times(
                rng, ts + 1, TOPICAL_ENGAGEMENT_WINDOW_MS, retweets_per_tweet
            )
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


# --- new vs. established account (§6) --------------------------------------------------------
def new_account_events(
    start_ms: int,
    *,
    engagers: Sequence[str],
    rng: random.Random,
    days: int = INJECT_NEW_ACCOUNT_DAYS,
    established: str = ESTABLISHED,
    newbie: str = NEWBIE,
    established_engagers: int = ESTABLISHED_ENGAGERS,
    established_per_day: float = ESTABLISHED_PER_DAY,
    newbie_engagements: int = NEWBIE_ENGAGEMENTS,
    newbie_engagers: int = NEWBIE_ENGAGERS,
    newbie_days: int = NEWBIE_DAYS,
    prefix: str = "newacct",
) -> list[Event]:
    """Over ``days`` days from ``start_ms``: ``established`` (3,000 followers) is engaged by
    exactly ``established_engagers`` (200) distinct accounts, ``established_per_day`` times a
    day; ``newbie`` (200 followers) appears only in the last ``newbie_days`` days, tweets daily
    and gets exactly ``newbie_engagements`` (20) engagements from ``newbie_engagers`` (3)
    accounts. ``engagers`` must hold at least ``established_engagers`` distinct accounts."""
    pool = _distinct_pool(engagers, established_engagers, "new_account_events")
    out = _Builder(prefix)
    _host_life(
        out,
        established,
        start_ms,
        days,
        engagers=rng.sample(pool, established_engagers),
        count=round(established_per_day * days),
        rng=rng,
        hashtag=HOST_HASHTAG,
        followers=ESTABLISHED_FOLLOWERS,
    )
    _host_life(
        out,
        newbie,
        start_ms + (days - newbie_days) * DAY_MS,
        newbie_days,
        engagers=rng.sample(pool, newbie_engagers),
        count=newbie_engagements,
        rng=rng,
        hashtag=HOST_HASHTAG,
        followers=NEWBIE_FOLLOWERS,
    )
    return out.events()


# --- default placements ----------------------------------------------------------------------
def inject(name: str, background_user_ids: Sequence[str], config: GeneratorConfig) -> list[Event]:
    """Scenario ``name`` at its default place in ``config``'s span ``[S, E)``, sorted by (ts, id).

    - ``ring``: ``ring_events`` over the last 4 days (from ``E - 4 d``).
    - ``party``: ``PARTY_HOST``'s life over the whole span (40 engagers, 3 a day) plus the party
      at 19:00 UTC 15 days before the end (``E - 15 d + 19 h``).
    - ``vacation``: ``VACATION_USER`` active from ``S`` (40 engagers, 3 a day), silent for the
      last 7 days.
    - ``viral-retweet``: the viral tweet at 12:00 UTC 10 days before the end, 300 cascade
      retweets; ``TOPICAL_AUTHOR`` posts on #amywinehouse on 5 days from ``E - 6 d``.
    - ``new-account``: ``new_account_events`` over the last 30 days.

    Engagers are drawn from ``background_user_ids`` by a generator seeded with the config's seed
    and the scenario name. Raises ``ValueError`` for an unknown name, a span shorter than
    ``INJECT_MIN_DAYS[name]`` or fewer background users than ``INJECT_MIN_USERS[name]``.
    """
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; expected one of {', '.join(SCENARIOS)}")
    if config.days < INJECT_MIN_DAYS[name]:
        raise ValueError(f"scenario {name!r} needs at least {INJECT_MIN_DAYS[name]} days")
    if len(background_user_ids) < INJECT_MIN_USERS[name]:
        raise ValueError(f"scenario {name!r} needs {INJECT_MIN_USERS[name]} background users")
    rng = random.Random(f"{config.seed}/{name}")
    start_ms, end_ms = config.start_ms, config.start_ms + config.days * DAY_MS
    users = list(background_user_ids)

    if name == "ring":
        return ring_events(end_ms - 4 * DAY_MS)
    if name == "party":
        life = host_engagement_events(
            PARTY_HOST,
            start_ms,
            config.days,
            engagers=rng.sample(users, INJECT_LIFE_ENGAGERS),
            per_day=INJECT_LIFE_PER_DAY,
            rng=rng,
            followers=PARTY_HOST_FOLLOWERS,
        )
        evening_ms = end_ms - INJECT_PARTY_DAYS_BEFORE_END * DAY_MS + INJECT_PARTY_HOUR * HOUR_MS
        party = party_events(PARTY_HOST, evening_ms, seed=rng.randrange(2**32))
        return sorted(life + party, key=event_order)
    if name == "vacation":
        return vacation_events(
            VACATION_USER,
            start_ms,
            config.days - INJECT_VACATION_SILENT_DAYS,
            INJECT_VACATION_SILENT_DAYS,
            engagers=rng.sample(users, INJECT_LIFE_ENGAGERS),
            rng=rng,
        )
    if name == "viral-retweet":
        viral_ms = end_ms - INJECT_VIRAL_DAYS_BEFORE_END * DAY_MS + INJECT_VIRAL_HOUR * HOUR_MS
        viral = viral_retweet_events(
            VIRAL_RETWEETER,
            VIRAL_AUTHOR,
            viral_ms,
            engagers=rng.sample(users, VIRAL_RETWEETS),
            rng=rng,
        )
        topical = topical_author_events(
            TOPICAL_AUTHOR,
            end_ms - (INJECT_TOPICAL_DAYS + 1) * DAY_MS,
            hashtag=VIRAL_HASHTAG,
            days=INJECT_TOPICAL_DAYS,
            engagers=rng.sample(users, INJECT_LIFE_ENGAGERS),
            rng=rng,
        )
        return sorted(viral + topical, key=event_order)
    return new_account_events(
        end_ms - INJECT_NEW_ACCOUNT_DAYS * DAY_MS,
        engagers=rng.sample(users, ESTABLISHED_ENGAGERS),
        rng=rng,
    )
