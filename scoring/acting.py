"""The actor's side of an event (§2): runs where the actor's state lives.

It counts the action once, advances the actor's grace clock and own topics, and turns an
engagement into an `Engagement` carrying the discounts that only the actor's history can tell:
selectivity (how much the actor engages that day), diminishing returns per pair, automation.
All these counters are order-dependent, so each is kept per input topic (§12). The first time
the actor engages someone who engaged them before, that engager's past weight on the actor
becomes reciprocal: reciprocity is symmetric and retroactive (§3).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from scoring.clock import NO_DAY
from scoring.events import ENGAGEMENT_KIND_INDEX, SOURCE_FOR_KIND, Engagement, Event
from scoring.fold import left_sum
from scoring.model import DAY_MS, HOUR_MS, Model
from scoring.state import (
    ACTION_COUNTERS,
    DAY,
    DAY_COUNT,
    HOUR,
    HOUR_COUNT,
    PREVIOUS_HOUR_COUNT,
    ActingState,
    UserState,
)
from scoring.topics import record_own_tweet

OWN = "own"
ENGAGEMENT = "engagement"
SELF = "self"
DUPLICATE = "duplicate"

_TOPIC_KINDS = frozenset(("tweet", "quote", "reply"))


class ActionResult(NamedTuple):
    """What the actor's step did: `outcome` is one of OWN, ENGAGEMENT, SELF, DUPLICATE."""

    outcome: str
    engagement: Engagement | None = None
    reciprocity_changed: bool = False
    topics_changed: bool = False
    audience_changed: bool = False

    @property
    def actor_score_cause(self) -> str | None:
        """Why the actor's own score may have moved, or None if it cannot have."""
        if self.reciprocity_changed:
            return "reciprocity"
        if self.topics_changed:
            return "topics"
        if self.audience_changed:
            return "audience"
        return None


def new_user_state(ts: int) -> UserState:
    """A fresh state whose forward-decay landmark is the start of the day of `ts`."""
    return UserState(landmark=ts - ts % DAY_MS, last_ts=ts)


def selectivity(count_today: int, model: Model) -> float:
    """s_a = min(1, sqrt(free / n_a)): an account that engages everything gives each little."""
    return min(1.0, math.sqrt(model.selectivity_free_per_day / count_today))


def automation(rate_per_hour: float, model: Model) -> float:
    """b_a: 1 up to the free rate, then linearly down to the minimum at the full rate."""
    free = model.automation_free_per_hour
    if rate_per_hour <= free:
        return 1.0
    full, low = model.automation_full_per_hour, model.automation_min_factor
    if rate_per_hour >= full:
        return low
    return 1.0 - (1.0 - low) * (rate_per_hour - free) / (full - free)


def pair_factor(earlier: float) -> float:
    """p_au = 1 / (1 + n_au)^2 for n_au earlier (decayed) engagements of the same target."""
    return 1.0 / ((1.0 + earlier) * (1.0 + earlier))


def _count_day(counters: list[int], at: int, day: int) -> int:
    """n_a: the actor's actions on one input topic so far in the UTC day of the action."""
    if day > counters[at + DAY]:
        counters[at + DAY] = day
        counters[at + DAY_COUNT] = 1
    else:
        counters[at + DAY_COUNT] += 1
    return counters[at + DAY_COUNT]


def _hourly_rate(counters: list[int], at: int, ts: int) -> float:
    """Actions in the trailing hour, interpolating the previous clock hour."""
    hour = ts // HOUR_MS
    stored = counters[at + HOUR]
    if hour == stored + 1:
        counters[at + PREVIOUS_HOUR_COUNT] = counters[at + HOUR_COUNT]
        counters[at + HOUR_COUNT] = 0
    elif hour > stored:
        counters[at + PREVIOUS_HOUR_COUNT] = 0
        counters[at + HOUR_COUNT] = 0
    if hour >= stored:
        counters[at + HOUR] = hour
    counters[at + HOUR_COUNT] += 1
    elapsed = (ts % HOUR_MS) / HOUR_MS
    return counters[at + HOUR_COUNT] + counters[at + PREVIOUS_HOUR_COUNT] * (1.0 - elapsed)


def _engage_pair(
    state: UserState, acting: ActingState, target: str, source: int, ts: int, model: Model
) -> tuple[float, bool]:
    """Returns (p_au, reciprocity changed) and counts the engagement of `target`."""
    growth = math.exp(model.actor_pair_rate * (ts - state.landmark))
    pair = acting.out_pairs.get(target)
    first_time = pair is None
    if pair is None:
        pair = [0.0, 0.0, 0.0]
        acting.out_pairs[target] = pair
        if len(acting.out_pairs) > model.max_out_pairs + model.max_out_pairs // 4:
            _evict_out_pairs(acting, model.max_out_pairs)
    factor = pair_factor(pair[source] / growth)
    pair[source] += growth
    changed = False
    received = state.received
    if first_time and received is not None:
        engager = received.in_pairs.get(target)
        if engager is not None and not engager.reciprocal:
            engager.reciprocal = True
            received.pair_reciprocal += engager.mass
            received.reciprocal_engagers += 1
            changed = True
    return factor, changed


def _evict_out_pairs(acting: ActingState, keep: int) -> None:
    pairs = acting.out_pairs
    ranked = sorted([(-left_sum(counts), user) for user, counts in pairs.items()])  # ids unique
    acting.out_pairs = {user: pairs[user] for _, user in ranked[:keep]}


_DUPLICATE_RESULT = ActionResult(DUPLICATE)
_SELF_RESULT = ActionResult(SELF)


def apply_action(state: UserState, event: Event, model: Model) -> ActionResult:
    """Applies `event` to its actor's `state` and returns the engagement to send on, if any."""
    event_id, kind, ts, actor, target, _, ref_tweet_id, hashtags, ref_hashtags, followers = event
    acting = state.acting
    if acting is None:
        acting = state.acting = ActingState()
    recent_ids = acting.recent_ids
    if event_id in recent_ids:
        return _DUPLICATE_RESULT
    recent_ids.append(event_id)
    if len(recent_ids) > model.dedup_ids:
        del recent_ids[0]
    if kind == "tweet":
        target = None  # an Event built by hand may carry one; a tweet engages no one
    elif target == actor:
        return _SELF_RESULT
    day = ts // DAY_MS
    state.clock.record_action(day, model.max_action_runs, model.grace_days, model.grace_renew_days)
    if ts > state.last_ts:
        state.last_ts = ts
    audience_changed = False
    if followers is not None and ts >= state.followers_ts:
        audience_changed = followers != state.followers
        state.followers, state.followers_ts = followers, ts
    topics_changed = False
    if hashtags and kind in _TOPIC_KINDS:
        record_own_tweet(state.topics, hashtags, day, model)
        topics_changed = True
    if target is None:
        return ActionResult(OWN, None, False, topics_changed, audience_changed)
    source = SOURCE_FOR_KIND[kind]
    kind_index = ENGAGEMENT_KIND_INDEX[kind]
    at = source * ACTION_COUNTERS
    count_today = _count_day(acting.counters, at, day)
    rate = _hourly_rate(acting.counters, at, ts)
    pair, reciprocity_changed = _engage_pair(state, acting, target, source, ts, model)
    engagement = Engagement._make(
        (
            event_id,
            kind_index,
            ts,
            actor,
            target,
            model.kind_weights[kind_index],
            selectivity(count_today, model),
            pair,
            automation(rate, model),
            ref_tweet_id,
            ref_hashtags,
        )
    )
    return ActionResult._make(
        (ENGAGEMENT, engagement, reciprocity_changed, topics_changed, audience_changed)
    )


__all__ = [
    "DUPLICATE",
    "ENGAGEMENT",
    "NO_DAY",
    "OWN",
    "SELF",
    "ActionResult",
    "apply_action",
    "automation",
    "new_user_state",
    "pair_factor",
    "selectivity",
]
