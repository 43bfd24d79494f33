"""Reading a user's influence mass at an event time: decay, grace, bursts, reciprocity (§3–§6).

Everything non-linear (the burst curve G, the burst baseline, the reciprocal share, shrinkage)
is applied here, at read time, to order-independent sums kept in the state. That is what makes
the final state independent of how engagements and the user's own actions interleave.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from scoring.fold import left_sum
from scoring.model import DAY_MS, Model
from scoring.shares import DayShare, ShareCache
from scoring.state import DayBucket, ReceivedState, UserState


def burst_curve(x: float, kappa: float) -> float:
    """G(X) = kappa * ln(1 + X / kappa): a day's raw total enters the mass through this (§4)."""
    return kappa * math.log1p(x / kappa)


def day_share(
    bucket: DayBucket, baseline_raw: float, baseline_engagers: float, model: Model
) -> DayShare:
    kappa = model.kappa
    raw = bucket.raw
    regular = excess = 0.0
    if raw > 0.0:
        total = kappa * math.log1p(raw / kappa)
        baseline = baseline_raw if baseline_raw > model.baseline_floor else model.baseline_floor
        if raw <= baseline:  # G is monotone: no burst, one logarithm
            regular = total / raw
        else:
            regular_total = kappa * math.log1p(baseline / kappa)
            mention = raw - bucket.content
            kind_weight = (
                bucket.content * model.content_excess_weight + mention * model.mention_excess_weight
            ) / raw
            regular = regular_total / raw
            excess = (total - regular_total) * kind_weight / raw
    floor = model.engager_baseline_floor
    engager_base = baseline_engagers if baseline_engagers > floor else floor
    new = float(bucket.new_engagers)
    if new <= engager_base:
        return DayShare(regular, excess, new, 0.0)
    burst_engagers = burst_curve(new, kappa) - burst_curve(engager_base, kappa)
    if model.engager_score and raw > 0.0:
        # model 2: a viral post's new engagers are content, a party's are name-drops
        mention = raw - bucket.content
        weight = (
            bucket.content * model.content_burst_weight + mention * model.engager_excess_weight
        ) / raw
        return DayShare(regular, excess, engager_base, burst_engagers * weight)
    return DayShare(regular, excess, engager_base, burst_engagers * model.engager_excess_weight)


def _baseline(
    history: list[float], buckets: list[DayBucket], index: int, span: int
) -> tuple[float, float]:
    """Average daily raw total and new engagers over the `span` days before bucket `index`."""
    day = buckets[index].day
    first = day - span
    raw_sum = 0.0
    engager_sum = 0.0
    for j in range(0, len(history), 3):
        if first <= history[j] < day:
            raw_sum += history[j + 1]
            engager_sum += history[j + 2]
    for earlier in buckets[:index]:
        if earlier.day >= first:
            raw_sum += earlier.raw
            engager_sum += earlier.new_engagers
    return raw_sum / span, engager_sum / span


def _share_cache(received: ReceivedState, model: Model) -> ShareCache:
    history, buckets, span = received.history, received.buckets, model.baseline_days
    older = [
        day_share(bucket, *_baseline(history, buckets, i, span), model)
        for i, bucket in enumerate(buckets[:-1])
    ]
    return ShareCache(older, _baseline(history, buckets, len(buckets) - 1, span))


def day_shares(received: ReceivedState, model: Model) -> list[DayShare]:
    """Shares of the open day buckets, each against the average of the previous days (§4)."""
    buckets = received.buckets
    if not buckets:
        return []
    cache = received.shares
    if cache is None:
        cache = received.shares = _share_cache(received, model)
    return [*cache.older, day_share(buckets[-1], *cache.newest_baseline, model)]


class Mass(NamedTuple):
    """The components of a user's influence at one event time."""

    fast: float
    """Regular mass, fast decay on the grace clock."""
    slow: float
    """Regular mass, slow decay, put on the fast scale (before the floor factor)."""
    burst: float
    """Burst excess, short half-life, weighted by kind."""
    reciprocal_share: float
    engagers: float
    paused_days: int
    """Days of silence not charged to fast decay so far."""
    effective: float
    """E_eff: mass after the floor, burst, reciprocity and shrinkage."""
    audience: float
    z: float
    """ln(1 + E_eff) + audience term: the raw influence the 1-100 scale maps."""
    quality: float = 1.0
    """Model 2: the share of received weight the selectivity and automation discounts left
    (repetition aside); the engager term is multiplied by it. Model 1: 1."""

    @property
    def regular(self) -> float:
        return max(self.fast, self.slow)


EMPTY_MASS = Mass(0.0, 0.0, 0.0, 0.0, 0.0, 0, 0.0, 0.0, 0.0)


def read_mass(state: UserState, now: int, model: Model) -> Mass:
    """The user's mass at event time `now` (decay evaluated on the user's grace clock)."""
    received = state.received
    if received is None:
        return EMPTY_MASS
    landmark = state.landmark
    clock = state.clock
    exp = math.exp
    if clock.runs:
        now_day = now // DAY_MS
        pauses = clock.pauses(now_day, model.grace_days, model.grace_renew_days)
        paused_now = clock.paused_before(now_day, pauses)
    else:
        pauses = []
        paused_now = clock.folded_paused
    tau_now = now - paused_now * DAY_MS
    fast_rate, slow_rate, burst_rate = model.fast_rate, model.slow_rate, model.burst_rate
    fast = slow = burst = 0.0
    engagers = received.sealed_engagers
    if received.sealed_fast:
        fast = received.sealed_fast * exp(-fast_rate * (tau_now - landmark))
        slow = received.sealed_slow * exp(-slow_rate * (now - landmark))
    if received.sealed_burst or received.sealed_burst_engagers:
        fading = exp(-burst_rate * (now - received.burst_ref))
        burst = received.sealed_burst * fading
        engagers += received.sealed_burst_engagers * fading
    for bucket, (regular, excess, new_engagers, burst_engagers) in zip(
        received.buckets, day_shares(received, model), strict=True
    ):
        start = bucket.day * DAY_MS
        paused = clock.paused_before(bucket.day, pauses) if pauses else clock.folded_paused
        tau_start = start - paused * DAY_MS
        fast += regular * bucket.fast * exp(-fast_rate * (tau_now - tau_start))
        slow += regular * bucket.slow * exp(-slow_rate * (now - start))
        engagers += new_engagers
        if excess or burst_engagers:
            fading = exp(-burst_rate * (now - start))
            burst += excess * bucket.burst * fading
            engagers += burst_engagers * fading
    pair_total = received.pair_total
    share_reciprocal = 0.0
    if pair_total > 0.0 and received.pair_reciprocal:
        share_reciprocal = min(1.0, received.pair_reciprocal / pair_total)
    if model.engager_score:
        return _engager_mass(
            state, now, (tau_now, paused_now), pauses, engagers, share_reciprocal, model
        )
    slow_on_fast_scale = model.slow_floor * slow * model.slow_to_fast
    total = (fast if fast > slow_on_fast_scale else slow_on_fast_scale) + burst
    effective = total * (1.0 - share_reciprocal * share_reciprocal)
    effective *= engagers / (engagers + model.shrinkage_prior)
    followers = state.followers
    audience = 0.0 if followers is None else audience_term(effective, followers, model)
    z = math.log1p(effective) + audience
    return Mass._make(
        (
            fast,
            slow_on_fast_scale,
            burst,
            share_reciprocal,
            engagers,
            paused_now,
            effective,
            audience,
            z,
            1.0,
        )
    )


def _engager_mass(
    state: UserState,
    now: int,
    grace: tuple[int, int],
    pauses: list[tuple[int, int]],
    engagers: float,
    share_reciprocal: float,
    model: Model,
) -> Mass:
    """Model 2: raw influence from distinct engagers rather than engagement mass.

    On the Higgs stream the count of distinct engagers predicts later retweeters better than
    any mass (docs/model.md): repetition, kind and time of day add noise, not signal. So each
    engager counts once, in full for ``engager_hold_days`` after its first day, then fades like
    mass (fast decay on the grace clock, slow floor). The anti-gaming rules act on the count:
    burst engagers count ``engager_excess_weight`` and fade (parties), the ring rule discounts
    the reciprocal share beyond ``reciprocal_free`` mutual engagers (friends are not a ring),
    the quality factor removes what selectivity and automation took from the engagers' weight,
    and new accounts are shrunk by n / (n + prior) as in model 1.
    """
    received = state.received
    assert received is not None
    tau_now, paused_now = grace
    landmark = state.landmark
    clock = state.clock
    exp = math.exp
    fast_rate, slow_rate, burst_rate = model.fast_rate, model.slow_rate, model.burst_rate
    fast = slow = burst = 0.0
    if received.sealed_engager_fast:
        fast = received.sealed_engager_fast * exp(-fast_rate * (tau_now - landmark))
        slow = received.sealed_engager_slow * exp(-slow_rate * (now - landmark))
    if received.sealed_burst_engagers:
        burst = received.sealed_burst_engagers * exp(-burst_rate * (now - received.burst_ref))
    hold = model.engager_hold_days
    for bucket, share in zip(received.buckets, day_shares(received, model), strict=True):
        hold_day = bucket.day + hold
        hold_end = hold_day * DAY_MS
        if now <= hold_end:
            fast += share.engagers
            slow += share.engagers
        else:
            paused = clock.paused_before(hold_day, pauses) if pauses else clock.folded_paused
            fast += share.engagers * exp(-fast_rate * (tau_now - (hold_end - paused * DAY_MS)))
            slow += share.engagers * exp(-slow_rate * (now - hold_end))
        if share.burst_engagers:
            burst += share.burst_engagers * exp(-burst_rate * (now - bucket.day * DAY_MS))
    slow_on_fast_scale = model.slow_floor * slow * model.slow_to_fast
    total = (fast if fast > slow_on_fast_scale else slow_on_fast_scale) + burst
    mutual, free = received.reciprocal_engagers, model.reciprocal_free
    ring_share = share_reciprocal * (mutual - free) / mutual if mutual > free else 0.0
    quality = engager_quality(received)
    effective = total * (1.0 - ring_share * ring_share)
    if quality != 1.0:
        effective *= quality
    effective *= engagers / (engagers + model.shrinkage_prior)
    followers = state.followers
    audience = 0.0 if followers is None else audience_term(effective, followers, model)
    z = math.log1p(effective) + audience
    return Mass(
        fast,
        slow_on_fast_scale,
        burst,
        ring_share,
        engagers,
        paused_now,
        effective,
        audience,
        z,
        quality,
    )


def engager_quality(received: ReceivedState) -> float:
    """Share of the engagers' weight that selectivity and automation left (1: none removed).

    The pair discount is left out: repetition is already absent from a count of engagers.
    """
    removed = received.removed
    lost = removed[0] + removed[2]
    if not lost:
        return 1.0
    kept = left_sum(received.kind_mass) + removed[1]
    return kept / (kept + lost)


def audience_term(effective: float, followers: int | None, model: Model) -> float:
    """0.5 * min(1, log10(1 + followers) / 7) once the user has real engagement (§6)."""
    if followers is None or effective < model.audience_min_mass:
        return 0.0
    return model.audience_weight * min(1.0, math.log10(1.0 + followers) / model.log10_followers_cap)
