"""From mass to what users see: the 1-100 score, its reasons, topic scores, change events.

Reasons attribute the score in points: each engagement kind's share of it, the audience term,
the temporary burst, and (negative) what reciprocity and new-account shrinkage hold back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scoring.mass import Mass, audience_term, read_mass
from scoring.model import Model
from scoring.scale import to_scale
from scoring.state import UserState
from scoring.topics import topic_evidence

_KIND_REASONS = ("retweets", "quotes", "replies", "mentions")


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    points: float


@dataclass(frozen=True, slots=True)
class TopicScore:
    topic: str
    score: float


@dataclass(frozen=True, slots=True)
class ScoreChange:
    """A score-change event (§10): emitted when the score moves by the threshold or more."""

    user: str
    score: float
    previous: float | None
    event_time: int
    cause: str
    """engagement, reciprocity, topics, audience, or decay (a day boundary, no new event)."""
    reasons: tuple[Reason, ...]
    topics: tuple[TopicScore, ...]


def score_of(mass: Mass, model: Model) -> float:
    return to_scale(mass.z, model.scale_knots)


def _z(
    total: float,
    reciprocal_share: float,
    engagers: float,
    followers: int | None,
    model: Model,
    shrink: bool = True,
) -> float:
    effective = total * (1.0 - reciprocal_share * reciprocal_share)
    if shrink:
        effective *= engagers / (engagers + model.shrinkage_prior)
    return math.log1p(effective) + audience_term(effective, followers, model)


def reasons(state: UserState, mass: Mass, model: Model) -> list[Reason]:
    """The score in points, by cause, largest first (at most ``top_reasons``)."""
    received = state.received
    if received is None or mass.effective <= 0.0:
        return []
    knots = model.scale_knots
    score = to_scale(mass.z, knots)
    engagement_points = to_scale(mass.z - mass.audience, knots) - 1.0
    kind_total = sum(received.kind_mass)
    out: list[Reason] = []
    if kind_total > 0.0:
        for code, kind_mass in zip(_KIND_REASONS, received.kind_mass, strict=True):
            if kind_mass > 0.0:
                out.append(Reason(code, round(engagement_points * kind_mass / kind_total, 2)))
    if mass.audience > 0.0:
        out.append(Reason("audience", round(score - 1.0 - engagement_points, 2)))
    regular = mass.regular
    followers = state.followers
    shares = mass.reciprocal_share, mass.engagers
    without_burst = _z(regular, *shares, followers, model)
    without_reciprocity = _z(regular + mass.burst, 0.0, mass.engagers, followers, model)
    without_shrinkage = _z(regular + mass.burst, *shares, followers, model, shrink=False)
    for code, z in (
        ("burst", without_burst),
        ("reciprocity", without_reciprocity),
        ("new_account", without_shrinkage),
    ):
        points = round(score - to_scale(z, knots), 2)
        if points != 0.0:
            out.append(Reason(code, points))
    out.sort(key=lambda r: (-abs(r.points), r.code))
    return out[: model.top_reasons]


def topic_scores(state: UserState, mass: Mass, model: Model) -> list[TopicScore]:
    """Published topics, each scored as the user's influence on its shrunk share (§8)."""
    received = state.received
    if received is None or not state.topics:
        return []
    evidence = topic_evidence(state.topics, sum(received.kind_mass), sum(received.counts), model)
    return [
        TopicScore(e.topic, to_scale(math.log1p(mass.effective * e.share), model.scale_knots))
        for e in evidence
        if e.published
    ]


def detect_change(
    user: str, state: UserState, now: int, model: Model, cause: str
) -> ScoreChange | None:
    """A change event if the score moved by the threshold since the last one (or is new)."""
    mass = read_mass(state, now, model)
    score = score_of(mass, model)
    previous = state.published
    if previous is not None and abs(score - previous) < model.change_threshold:
        return None
    state.published = score
    return ScoreChange(
        user=user,
        score=score,
        previous=previous,
        event_time=now,
        cause=cause,
        reasons=tuple(reasons(state, mass, model)),
        topics=tuple(topic_scores(state, mass, model)),
    )
