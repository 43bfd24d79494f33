"""The target's side of an engagement (§3–§6, §8): runs where the target's state lives.

Only order-independent sums change here: the day's raw totals and forward-decayed sums, the
pair masses and their reciprocal part, per-kind sums, integer counts, windows and topics. Days
older than ``open_days`` are folded into running sums once no late engagement is expected.
"""

from __future__ import annotations

import math

from scoring.clock import NO_DAY
from scoring.events import Engagement
from scoring.mass import burst_curve, day_shares
from scoring.model import DAY_MS, Model
from scoring.sketch import add as add_to_filter
from scoring.sketch import might_contain
from scoring.state import DayBucket, InPair, ReceivedState, UserState
from scoring.topics import record_topic_engagement
from scoring.windows import add_to_windows

_MENTION = 3


def apply_engagement(state: UserState, engagement: Engagement, model: Model) -> None:
    """Adds one engagement received by the user whose `state` this is."""
    received = state.received
    if received is None:
        received = state.received = ReceivedState(burst_ref=state.landmark)
    _, kind, ts, actor, _, weight, selectivity, pair, automation, tweet_id, tags = engagement
    contribution = weight * selectivity * pair * automation
    day = ts // DAY_MS
    buckets = received.buckets
    if buckets and buckets[-1].day == day:
        bucket: DayBucket | None = buckets[-1]
    else:
        bucket = _bucket_for(state, received, day, model)
    exp = math.exp
    if bucket is not None:
        bucket.raw += contribution
        if kind != _MENTION:
            bucket.content += contribution
        offset = ts - day * DAY_MS
        bucket.fast += contribution * exp(model.fast_rate * offset)
        bucket.slow += contribution * exp(model.slow_rate * offset)
        bucket.burst += contribution * exp(model.burst_rate * offset)
    else:
        _add_late(state, received, day, ts, contribution, model)
    _add_pair(state, received, actor, ts, contribution, day, model)
    growth = exp(model.fast_rate * (ts - state.landmark))
    received.kind_mass[kind] += contribution * growth
    removed = received.removed  # a factor of exactly 1 removed nothing: skip its term
    if selectivity != 1.0:
        removed[0] += weight * (1.0 - selectivity) * growth
    if pair != 1.0:
        removed[1] += weight * selectivity * (1.0 - pair) * growth
    if automation != 1.0:
        removed[2] += weight * selectivity * pair * (1.0 - automation) * growth
    received.counts[kind] += 1
    add_to_windows(received.windows, ts, kind, model.minute_bucket_ms)
    if tags:
        record_topic_engagement(state.topics, tags, contribution * growth, actor, tweet_id, model)
    if ts > state.last_ts:
        state.last_ts = ts


def _add_pair(
    state: UserState,
    received: ReceivedState,
    actor: str,
    ts: int,
    contribution: float,
    day: int,
    model: Model,
) -> None:
    """Adds to the engager's pair mass, reciprocal if the user has engaged the engager (§3)."""
    amount = contribution * math.exp(model.reciprocity_rate * (ts - state.landmark))
    received.pair_total += amount
    pair = received.in_pairs.get(actor)
    if pair is None:
        if received.evicted and might_contain(received.evicted, actor):
            # Back after its entry was evicted: not a new engager, and its first day is
            # unknown now (NO_DAY: no first-day move later).
            pair = received.in_pairs[actor] = InPair(first_day=NO_DAY)
        else:
            pair = received.in_pairs[actor] = InPair(first_day=day)
            _count_new_engager(state, received, day, +1, model)
        if len(received.in_pairs) > model.max_in_pairs + model.max_in_pairs // 4:
            _evict_in_pairs(received, model.max_in_pairs)
    elif day < pair.first_day:
        _count_new_engager(state, received, pair.first_day, -1, model)
        _count_new_engager(state, received, day, +1, model)
        pair.first_day = day
    pair.mass += amount
    if pair.reciprocal:
        received.pair_reciprocal += amount
    else:
        acting = state.acting
        if acting is not None and actor in acting.out_pairs:
            pair.reciprocal = True
            received.pair_reciprocal += pair.mass
            received.reciprocal_engagers += 1


def _count_new_engager(
    state: UserState, received: ReceivedState, day: int, delta: int, model: Model
) -> None:
    buckets = received.buckets
    if buckets and buckets[-1].day == day:
        buckets[-1].new_engagers += delta
        return
    received.shares = None
    for bucket in buckets:
        if bucket.day == day:
            bucket.new_engagers += delta
            return
    history = received.history
    for j in range(0, len(history), 3):
        if history[j] == day:
            history[j + 2] += delta
            break
    received.sealed_engagers += delta
    if model.engager_score:
        clock = state.clock
        until = day + model.engager_hold_days
        pauses = clock.pauses(until, model.grace_days, model.grace_renew_days) if clock.runs else []
        _seal_engagers(state, received, day, float(delta), pauses, model)


def _seal_engagers(
    state: UserState,
    received: ReceivedState,
    day: int,
    engagers: float,
    pauses: list[tuple[int, int]],
    model: Model,
) -> None:
    """Folds a day's engagers into model 2's sums, valued from the end of their hold.

    `pauses` must cover the days before the hold's end. Sealed days are past their hold
    (``hold_days <= open_days``), so reading the sums as plain forward decay is exact.
    """
    hold_day = day + model.engager_hold_days
    hold_end = hold_day * DAY_MS
    clock = state.clock
    paused = clock.paused_before(hold_day, pauses) if pauses else clock.folded_paused
    tau_end = hold_end - paused * DAY_MS
    landmark = state.landmark
    received.sealed_engager_fast += engagers * math.exp(model.fast_rate * (tau_end - landmark))
    received.sealed_engager_slow += engagers * math.exp(model.slow_rate * (hold_end - landmark))


def _evict_in_pairs(received: ReceivedState, keep: int) -> None:
    """Keeps the `keep` heaviest engagers; sums already counted stay in the totals."""
    pairs = received.in_pairs
    ranked = sorted([(-pair.mass, user) for user, pair in pairs.items()])  # ids are unique
    received.in_pairs = {user: pairs[user] for _, user in ranked[:keep]}
    for _, user in ranked[keep:]:
        received.evicted = add_to_filter(received.evicted, user)


def _bucket_for(
    state: UserState, received: ReceivedState, day: int, model: Model
) -> DayBucket | None:
    """The open bucket for `day`, creating it (and folding old days) as needed."""
    buckets = received.buckets
    if buckets and buckets[-1].day == day:
        return buckets[-1]
    received.shares = None  # a new day, or an engagement on an older one
    if not buckets or day > buckets[-1].day:
        buckets.append(DayBucket(day))
        _seal_old_days(state, received, day - model.open_days, model)
        return buckets[-1]
    if day <= buckets[-1].day - model.open_days:
        return None
    for i, bucket in enumerate(buckets):
        if bucket.day == day:
            return bucket
        if bucket.day > day:
            fresh = DayBucket(day)
            buckets.insert(i, fresh)
            return fresh
    raise AssertionError("unreachable: day lies before the newest bucket")


def _seal_old_days(state: UserState, received: ReceivedState, last_day: int, model: Model) -> None:
    """Folds buckets of days <= `last_day` into the running sums, oldest first."""
    buckets = received.buckets
    if not buckets or buckets[0].day > last_day:
        return
    shares = day_shares(received, model)
    clock = state.clock
    pauses = (
        clock.pauses(last_day + 1, model.grace_days, model.grace_renew_days) if clock.runs else []
    )
    hold_pauses: list[tuple[int, int]] = []
    if model.engager_score and clock.runs:
        until = last_day + model.engager_hold_days
        hold_pauses = clock.pauses(until, model.grace_days, model.grace_renew_days)
    landmark = state.landmark
    sealed = 0
    for bucket, share in zip(buckets, shares, strict=False):
        if bucket.day > last_day:
            break
        start = bucket.day * DAY_MS
        tau_start = start - clock.paused_before(bucket.day, pauses) * DAY_MS
        received.sealed_fast += (
            share.regular * bucket.fast * math.exp(model.fast_rate * (tau_start - landmark))
        )
        received.sealed_slow += (
            share.regular * bucket.slow * math.exp(model.slow_rate * (start - landmark))
        )
        _add_burst(received, start, share.excess * bucket.burst, share.burst_engagers, model)
        received.sealed_engagers += share.engagers
        if model.engager_score:
            _seal_engagers(state, received, bucket.day, share.engagers, hold_pauses, model)
        received.history.extend((bucket.day, bucket.raw, bucket.new_engagers))
        sealed += 1
    del buckets[:sealed]
    received.shares = None
    horizon = last_day - model.baseline_days
    history = received.history
    keep = next((j for j in range(0, len(history), 3) if history[j] >= horizon), len(history))
    del history[:keep]


def _add_burst(
    received: ReceivedState, start: int, excess: float, engagers: float, model: Model
) -> None:
    """Adds burst excess that began at `start` to the sums valued at `burst_ref`."""
    if start > received.burst_ref:
        decay = math.exp(-model.burst_rate * (start - received.burst_ref))
        received.sealed_burst *= decay
        received.sealed_burst_engagers *= decay
        received.burst_ref = start
        received.sealed_burst += excess
        received.sealed_burst_engagers += engagers
    else:
        decay = math.exp(-model.burst_rate * (received.burst_ref - start))
        received.sealed_burst += excess * decay
        received.sealed_burst_engagers += engagers * decay


def _add_late(
    state: UserState, received: ReceivedState, day: int, ts: int, contribution: float, model: Model
) -> None:
    """An engagement for a day already folded: regular mass at the marginal rate of G."""
    raw = 0.0
    history = received.history
    for j in range(0, len(history), 3):
        if history[j] == day:
            raw = history[j + 1]
            history[j + 1] += contribution
            received.shares = None
            break
    marginal = burst_curve(raw + contribution, model.kappa) - burst_curve(raw, model.kappa)
    clock = state.clock
    pauses = clock.pauses(day + 1, model.grace_days, model.grace_renew_days) if clock.runs else []
    tau = ts - clock.paused_before(day, pauses) * DAY_MS
    received.sealed_fast += marginal * math.exp(model.fast_rate * (tau - state.landmark))
    received.sealed_slow += marginal * math.exp(model.slow_rate * (ts - state.landmark))
