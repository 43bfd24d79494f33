"""Per-user state records and their compact serialisation.

One `UserState` per user holds both sides of §12's split: what the user did (`acting`, kept
where the user's actions arrive) and what the user received (`received`, fed by engagements
repartitioned by target). Both sides live in the same partition, so reciprocity is local.

Masses are forward-decayed sums ``sum(c * exp(rate * (t - landmark)))`` against the user's own
landmark (the start of the first day the user was seen), read later by multiplying with
``exp(-rate * (now - landmark))``: exact, O(1) and independent of processing order.

Serialisation is a positional JSON array (orjson): small, fast, and versioned by its first
element so a changed layout is detected rather than misread. Layout 4 added the score history
(`scoring.history`) at the end; a layout-3 row still reads, with no history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from scoring.clock import NO_DAY, GraceClock
from scoring.errors import StateError
from scoring.history import ScoreHistory, history_from_row, history_to_row
from scoring.shares import ShareCache
from scoring.topics import TopicStats
from scoring.windows import new_windows

STATE_LAYOUT = 4
READABLE_LAYOUTS = (3, STATE_LAYOUT)
"""Layouts `state_from_row` reads: 3 is 4 without the score history."""


@dataclass(slots=True)
class DayBucket:
    """Engagement received on one UTC day, kept raw until the day is folded (§4 needs totals)."""

    day: int
    raw: float = 0.0
    """X: the day's total contribution."""
    content: float = 0.0
    """Part of `raw` from retweets, quotes and replies (the rest is mentions)."""
    fast: float = 0.0
    """sum(c * exp(fast_rate * (t - day_start)))."""
    slow: float = 0.0
    burst: float = 0.0
    new_engagers: int = 0


@dataclass(slots=True)
class InPair:
    """One engager of this user."""

    mass: float = 0.0
    """Contributions from the engager, forward-decayed at the reciprocity rate."""
    first_day: int = NO_DAY
    reciprocal: bool = False
    """This user has engaged the engager too; its mass counts as reciprocal (§3)."""


DAY, DAY_COUNT, HOUR, HOUR_COUNT, PREVIOUS_HOUR_COUNT = range(5)
"""Offsets of an input topic's counters in `ActingState.counters`: UTC day, actions that day,
clock hour, actions that hour, actions the hour before."""
ACTION_COUNTERS = 5


def new_action_counters() -> list[int]:
    """Counters for the three input topics (tweets, retweets, mentions), nothing counted yet."""
    return [NO_DAY, 0, NO_DAY, 0, 0] * 3


@dataclass(slots=True)
class ActingState:
    """Counters of the user's own actions, per input topic (order-dependent, §12)."""

    counters: list[int] = field(default_factory=new_action_counters)
    """`ACTION_COUNTERS` per input topic, topic s at ``s * ACTION_COUNTERS``: one flat list, not
    five, because every acting user has one (half the users of a stream)."""
    out_pairs: dict[str, list[float]] = field(default_factory=dict)
    """Engaged user -> per-topic decayed engagement counts (pair rate, landmark)."""
    recent_ids: list[str] = field(default_factory=list)
    """Ids of the latest actions, so a redelivered event is counted once."""


@dataclass(slots=True)
class ReceivedState:
    """Engagement received: open day buckets, folded sums, pairs, explanations, windows."""

    buckets: list[DayBucket] = field(default_factory=list)
    history: list[float] = field(default_factory=list)
    """Folded days still inside the burst baseline: flattened (day, raw, new_engagers)."""
    sealed_fast: float = 0.0
    """Folded regular mass, forward-decayed on the grace clock (fast rate)."""
    sealed_slow: float = 0.0
    sealed_engagers: float = 0.0
    """Distinct engagers of folded days that were within the daily baseline."""
    sealed_burst: float = 0.0
    """Folded burst excess, value as of `burst_ref`."""
    sealed_burst_engagers: float = 0.0
    burst_ref: int = 0
    pair_total: float = 0.0
    pair_reciprocal: float = 0.0
    in_pairs: dict[str, InPair] = field(default_factory=dict)
    kind_mass: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])
    """Contributions per kind, forward-decayed (fast rate, event time): for explanations."""
    removed: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    """What selectivity, pair and automation discounts removed, same decay as `kind_mass`."""
    counts: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    """Integer engagements received per kind (exact)."""
    windows: list[list[list[int]]] = field(default_factory=new_windows)
    evicted: int = 0
    """Bloom filter (scoring.sketch) of engagers whose pair entry the cap evicted."""
    sealed_engager_fast: float = 0.0
    """Model 2: folded days' engagers (within the baseline), forward-decayed from the end of
    their hold on the grace clock (fast rate). Kept under model 1 too: it costs a sum."""
    sealed_engager_slow: float = 0.0
    reciprocal_engagers: int = 0
    """Engagers this user has engaged back (pairs ever marked reciprocal; model 2's ring rule)."""
    shares: ShareCache | None = field(default=None, compare=False, repr=False)
    """Derived, not stored: the open days' shares as far as they do not change with the newest
    day (see `scoring.mass.day_shares`). Reset to None whenever an older open day or `history`
    changes, or the open days themselves change."""


@dataclass(slots=True)
class UserState:
    landmark: int
    """Start (ms) of the first UTC day the user was seen: the forward-decay landmark."""
    clock: GraceClock = field(default_factory=GraceClock)
    followers: int | None = None
    followers_ts: int = 0
    acting: ActingState | None = None
    received: ReceivedState | None = None
    topics: dict[str, TopicStats] = field(default_factory=dict)
    published: float | None = None
    """The last score announced in a score-change event."""
    last_ts: int = 0
    """Latest event time that touched this user."""
    history: ScoreHistory | None = None
    """Daily closes and the latest published changes (`scoring.history`); None before any."""


STORED_DIGITS = 7
"""Significant digits kept for floats in serialised state: scores move by far less than the
emission threshold (about 1e-6 relative), and a state shrinks by half."""


def _short(x: float) -> float:
    return float(f"{x:.{STORED_DIGITS}g}")


def _shorts(values: list[float]) -> list[float]:
    return [float(f"{x:.{STORED_DIGITS}g}") for x in values]


def _bucket_row(b: DayBucket) -> list[Any]:
    return [b.day, b.raw, b.content, b.fast, b.slow, b.burst, b.new_engagers]


def _topic_row(t: TopicStats) -> list[Any]:
    tweets = {k: _short(v) for k, v in t.tweets.items()}
    return [t.own_tweets, t.days, _short(t.mass), t.count, t.engagers, tweets, _short(t.error)]


def state_to_row(state: UserState) -> list[Any]:
    """The state as a positional, JSON-ready array."""
    clock = state.clock
    acting = state.acting
    received = state.received
    row: list[Any] = [
        STATE_LAYOUT,
        state.landmark,
        [clock.runs, clock.folded_paused, clock.period_start, clock.budget],
        state.followers,
        state.followers_ts,
        None
        if acting is None
        else [
            acting.counters,
            {k: _shorts(v) for k, v in acting.out_pairs.items()},
            acting.recent_ids,
        ],
        None
        if received is None
        else [
            [_bucket_row(b) for b in received.buckets],
            _shorts(received.history),
            received.sealed_fast,
            received.sealed_slow,
            received.sealed_engagers,
            received.sealed_burst,
            received.sealed_burst_engagers,
            received.burst_ref,
            received.pair_total,
            received.pair_reciprocal,
            {
                k: [_short(p.mass), p.first_day, int(p.reciprocal)]
                for k, p in received.in_pairs.items()
            },
            received.kind_mass,
            received.removed,
            received.counts,
            received.windows,
            format(received.evicted, "x"),
        ],
        {tag: _topic_row(t) for tag, t in state.topics.items()},
        state.published,
        state.last_ts,
        history_to_row(state.history),
        None
        if received is None
        else [
            received.sealed_engager_fast,
            received.sealed_engager_slow,
            received.reciprocal_engagers,
        ],
    ]
    return row


def state_from_row(row: Any) -> UserState:
    """Inverse of `state_to_row`; raises StateError on a layout it does not know."""
    if not isinstance(row, list) or not row or row[0] not in READABLE_LAYOUTS:
        raise StateError(f"unknown state layout: {str(row)[:60]}")
    try:
        _, landmark, clock_row, followers, followers_ts, acting_row, received_row = row[:7]
        topics_row, published, last_ts = row[7:10]
        # layout 4 appends the score history and model 2's engager sums; layout 3 rows read
        # with an empty history and zero sums
        engagers_row = row[11] if row[0] == STATE_LAYOUT and len(row) > 11 else None
        state = UserState(
            landmark=landmark,
            clock=GraceClock(*clock_row),
            followers=followers,
            followers_ts=followers_ts,
            published=published,
            last_ts=last_ts,
            history=history_from_row(row[10]) if row[0] == STATE_LAYOUT else None,
        )
        if acting_row is not None:
            state.acting = ActingState(*acting_row)
        if received_row is not None:
            buckets = [DayBucket(*b) for b in received_row[0]]
            pairs = {k: InPair(m, d, bool(r)) for k, (m, d, r) in received_row[10].items()}
            (
                history,
                sealed_fast,
                sealed_slow,
                sealed_engagers,
                sealed_burst,
                sealed_burst_engagers,
                burst_ref,
                pair_total,
                pair_reciprocal,
            ) = received_row[1:10]
            kind_mass, removed, counts, windows, evicted = received_row[11:16]
            state.received = ReceivedState(
                buckets=buckets,
                history=history,
                sealed_fast=sealed_fast,
                sealed_slow=sealed_slow,
                sealed_engagers=sealed_engagers,
                sealed_burst=sealed_burst,
                sealed_burst_engagers=sealed_burst_engagers,
                burst_ref=burst_ref,
                pair_total=pair_total,
                pair_reciprocal=pair_reciprocal,
                in_pairs=pairs,
                kind_mass=kind_mass,
                removed=removed,
                counts=counts,
                windows=windows,
                evicted=int(evicted, 16),
            )
            if engagers_row is not None:
                received = state.received
                (
                    received.sealed_engager_fast,
                    received.sealed_engager_slow,
                    received.reciprocal_engagers,
                ) = engagers_row
        state.topics = {tag: TopicStats(*t) for tag, t in topics_row.items()}
    except (TypeError, ValueError) as exc:
        raise StateError(f"malformed state: {exc}") from exc
    return state


def encode_state(state: UserState) -> bytes:
    return orjson.dumps(state_to_row(state))


def decode_state(data: bytes) -> UserState:
    try:
        row = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise StateError(f"state is not JSON: {exc}") from exc
    return state_from_row(row)
