"""Reading a user's influence mass at an event time: decay, grace, bursts, reciprocity (§3–§6).

Everything non-linear (the burst curve G, the burst baseline, the reciprocal share, shrinkage)
is applied here, at read time, to order-independent sums kept in the state. That is what makes
the final state independent of how engagements and the user's own actions interleave.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scoring.model import DAY_MS, Model
from scoring.state import DayBucket, ReceivedState, UserState


def burst_curve(x: float, kappa: float) -> float:
    """G(X) = kappa * ln(1 + X / kappa): a day's raw total enters the mass through this (§4)."""
    return kappa * math.log1p(x / kappa)


@dataclass(frozen=True, slots=True)
class DayShare:
    """How one day's engagement splits into regular mass and burst excess."""

    regular: float
    """Multiplier for the day's sums that yields its regular mass: min(G(X), G(B)) / X."""
    excess: float
    """Multiplier for the day's burst sum: (G(X) - G(B))^+ weighted by kind, over X."""
    engagers: float
    """Distinct new engagers within the user's daily baseline."""
    burst_engagers: float
    """Weighted new engagers above the baseline (they fade with the burst)."""


def day_share(
    bucket: DayBucket, baseline_raw: float, baseline_engagers: float, model: Model
) -> DayShare:
    kappa = model.kappa
    raw = bucket.raw
    if raw <= 0.0:
        regular = excess = 0.0
    else:
        total = burst_curve(raw, kappa)
        regular_total = min(total, burst_curve(max(baseline_raw, model.baseline_floor), kappa))
        mention = raw - bucket.content
        kind_weight = (
            bucket.content * model.content_excess_weight + mention * model.mention_excess_weight
        ) / raw
        regular = regular_total / raw
        excess = (total - regular_total) * kind_weight / raw
    engager_base = max(baseline_engagers, model.engager_baseline_floor)
    new = float(bucket.new_engagers)
    regular_engagers = min(new, engager_base)
    burst_engagers = max(0.0, burst_curve(new, kappa) - burst_curve(engager_base, kappa))
    return DayShare(regular, excess, regular_engagers, burst_engagers * model.engager_excess_weight)


def day_shares(received: ReceivedState, model: Model) -> list[DayShare]:
    """Shares of the open day buckets, each against the average of the previous days (§4)."""
    span = model.baseline_days
    history = received.history
    out: list[DayShare] = []
    buckets = received.buckets
    for i, bucket in enumerate(buckets):
        first = bucket.day - span
        raw_sum = 0.0
        engager_sum = 0.0
        for j in range(0, len(history), 3):
            if first <= history[j] < bucket.day:
                raw_sum += history[j + 1]
                engager_sum += history[j + 2]
        for earlier in buckets[:i]:
            if earlier.day >= first:
                raw_sum += earlier.raw
                engager_sum += earlier.new_engagers
        out.append(day_share(bucket, raw_sum / span, engager_sum / span, model))
    return out


@dataclass(frozen=True, slots=True)
class Mass:
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
    now_day = now // DAY_MS
    pauses = clock.pauses(now_day, model.grace_days, model.grace_renew_days) if clock.runs else []
    paused_now = clock.paused_before(now_day, pauses)
    tau_now = now - paused_now * DAY_MS
    fast_rate, slow_rate, burst_rate = model.fast_rate, model.slow_rate, model.burst_rate
    fast = received.sealed_fast * math.exp(-fast_rate * (tau_now - landmark))
    slow = received.sealed_slow * math.exp(-slow_rate * (now - landmark))
    burst_decay = math.exp(-burst_rate * (now - received.burst_ref))
    burst = received.sealed_burst * burst_decay
    engagers = received.sealed_engagers + received.sealed_burst_engagers * burst_decay
    for bucket, share in zip(received.buckets, day_shares(received, model), strict=True):
        start = bucket.day * DAY_MS
        tau_start = start - clock.paused_before(bucket.day, pauses) * DAY_MS
        fast += share.regular * bucket.fast * math.exp(-fast_rate * (tau_now - tau_start))
        slow += share.regular * bucket.slow * math.exp(-slow_rate * (now - start))
        fading = math.exp(-burst_rate * (now - start))
        burst += share.excess * bucket.burst * fading
        engagers += share.engagers + share.burst_engagers * fading
    slow_on_fast_scale = model.slow_floor * slow * model.slow_to_fast
    total = max(fast, slow_on_fast_scale) + burst
    share_reciprocal = (
        min(1.0, received.pair_reciprocal / received.pair_total)
        if received.pair_total > 0.0
        else 0.0
    )
    effective = total * (1.0 - share_reciprocal * share_reciprocal)
    effective *= engagers / (engagers + model.shrinkage_prior)
    audience = audience_term(effective, state.followers, model)
    return Mass(
        fast=fast,
        slow=slow_on_fast_scale,
        burst=burst,
        reciprocal_share=share_reciprocal,
        engagers=engagers,
        paused_days=paused_now,
        effective=effective,
        audience=audience,
        z=math.log1p(effective) + audience,
    )


def audience_term(effective: float, followers: int | None, model: Model) -> float:
    """0.5 * min(1, log10(1 + followers) / 7) once the user has real engagement (§6)."""
    if followers is None or effective < model.audience_min_mass:
        return 0.0
    return model.audience_weight * min(1.0, math.log10(1.0 + followers) / model.log10_followers_cap)
