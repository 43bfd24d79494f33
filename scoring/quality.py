"""Two numbers besides the score: how much of a user's audience is real, and how much evidence
stands behind the score (what buyers of influencer data ask for: HypeAuditor's audience quality,
Modash's fake-follower share, Upfluence's confidence).

Audience quality is the share of the engagement a user received that survived the anti-gaming
rules, 0-100, with the share each rule removed as its reasons. Confidence is 0-1 and grows with
the distinct engagers and the days with engagement behind the score: five engagements from two
accounts on one day give a low one, whatever the score. Both are read from the state at an
event time, like the score; neither changes the score.
"""

from __future__ import annotations

from typing import NamedTuple

from scoring.fold import left_sum
from scoring.mass import Mass
from scoring.model import Model
from scoring.state import UserState

QUALITY_SCALE = 100.0
CONFIDENCE_ENGAGERS = 10.0
"""Distinct engagers at which the engager half of confidence is 1/2."""
CONFIDENCE_DAYS = 3.0
"""Days with engagement (within the burst baseline's window) at which the day half is 1/2."""


class QualityReason(NamedTuple):
    rule: str
    share: float
    """Share (0-1) of the received engagement this rule removed."""


class AudienceQuality(NamedTuple):
    score: float
    """0-100: the share of received engagement that survived the rules."""
    reasons: tuple[QualityReason, ...]
    """What each rule removed, largest first (rules that removed nothing are left out)."""


PERFECT = AudienceQuality(QUALITY_SCALE, ())


def audience_quality(state: UserState, mass: Mass, model: Model) -> AudienceQuality:
    """Received engagement after each rule in turn: actor selectivity, repetition by the same
    engager (pair cap), automation, reciprocity and rings, bursts (engagement held as a fading
    burst), and new-account shrinkage."""
    received = state.received
    if received is None:
        return PERFECT
    kept = left_sum(received.kind_mass)
    removed = received.removed
    gross = kept + removed[0] + removed[1] + removed[2]
    if gross <= 0.0:
        return PERFECT
    losses = [
        ("selectivity", removed[0] / gross),
        ("pair_cap", removed[1] / gross),
        ("automation", removed[2] / gross),
    ]
    left = kept / gross
    ring = left * mass.reciprocal_share * mass.reciprocal_share
    losses.append(("reciprocity", ring))
    left -= ring
    held = mass.regular + mass.burst
    burst = left * mass.burst / held if held > 0.0 else 0.0
    losses.append(("burst", burst))
    left -= burst
    engagers = mass.engagers
    shrunk = left * model.shrinkage_prior / (engagers + model.shrinkage_prior)
    losses.append(("new_account", shrunk))
    left -= shrunk
    reasons = sorted(
        (QualityReason(rule, _four_places(share)) for rule, share in losses if share > 0.0),
        key=lambda r: (-r.share, r.rule),
    )
    return AudienceQuality(round(QUALITY_SCALE * max(0.0, left), 2), tuple(reasons))


def _four_places(x: float) -> float:
    """x to 4 decimals as two-decimal percent (what the compiled core's round2 reproduces)."""
    return round(x * QUALITY_SCALE, 2) / QUALITY_SCALE


def confidence(state: UserState, mass: Mass) -> float:
    """0-1: n / (n + 10) for n distinct engagers, times d / (d + 3) for d days with engagement
    among the open and recent days (the burst baseline's 30-day window)."""
    received = state.received
    if received is None:
        return 0.0
    history = received.history
    days = sum(1 for j in range(1, len(history), 3) if history[j] > 0.0)
    days += sum(1 for bucket in received.buckets if bucket.raw > 0.0)
    engagers = mass.engagers
    level = engagers / (engagers + CONFIDENCE_ENGAGERS) * days / (days + CONFIDENCE_DAYS)
    return _four_places(level)
