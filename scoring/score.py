"""From mass to what users see: the 1-100 score, its reasons, topic scores, change events.

Reasons attribute the score in points: each engagement kind's share of it, the audience term,
the temporary burst, and (negative) what reciprocity and new-account shrinkage hold back.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from scoring.fold import left_sum
from scoring.history import record_change
from scoring.mass import Mass, audience_term, read_mass
from scoring.model import Model
from scoring.quality import AudienceQuality, audience_quality, confidence
from scoring.scale import to_scale
from scoring.state import UserState
from scoring.topics import topic_evidence

_KIND_REASONS = ("retweets", "quotes", "replies", "mentions")


class Reason(NamedTuple):
    """One cause of the score and the points it is worth (negative: what a rule holds back).

    Reasons, topic scores and change events are immutable named tuples: one is built for every
    score change, and a frozen dataclass costs several times as much to construct.
    """

    code: str
    points: float


class TopicScore(NamedTuple):
    topic: str
    score: float


class ScoreChange(NamedTuple):
    """A score-change event (§10): emitted when the score moves by the threshold or more.

    It carries the audience quality and confidence at its event time (`scoring.quality`), read
    from the same mass as the score: a consumer of the events sees how real the audience
    behind a move is without asking the API. Both are computed only for a change that is
    emitted, so a move under the threshold costs nothing more.
    """

    user: str
    score: float
    previous: float | None
    event_time: int
    cause: str
    """engagement, reciprocity, topics, audience, or decay (a day boundary, no new event)."""
    reasons: tuple[Reason, ...]
    topics: tuple[TopicScore, ...]
    audience_quality: AudienceQuality
    confidence: float


def score_of(mass: Mass, model: Model) -> float:
    return to_scale(mass.z, model.scale_knots)


def _z(
    total: float,
    reciprocal_share: float,
    engagers: float,
    followers: int | None,
    model: Model,
    shrink: bool = True,
    quality: float = 1.0,
) -> float:
    effective = total * (1.0 - reciprocal_share * reciprocal_share)
    if quality != 1.0:
        effective *= quality
    if shrink:
        effective *= engagers / (engagers + model.shrinkage_prior)
    return math.log1p(effective) + audience_term(effective, followers, model)


def reasons(state: UserState, mass: Mass, model: Model, score: float | None = None) -> list[Reason]:
    """The score in points, by cause, largest first (at most ``top_reasons``).

    `score` is ``score_of(mass, model)`` when the caller has it. A rule that held nothing back
    (no burst, no reciprocal mass, no audience) is worth exactly 0 points and is not evaluated.
    """
    received = state.received
    if received is None or mass.effective <= 0.0:
        return []
    knots = model.scale_knots
    z = mass.z
    if score is None:
        score = to_scale(z, knots)
    audience = mass.audience
    engagement_points = (to_scale(z - audience, knots) if audience else score) - 1.0
    ranked: list[tuple[float, str, float]] = []
    """(-|points|, code, points): sorts largest first, ties by code."""
    kind_masses = received.kind_mass
    kind_total = left_sum(kind_masses)
    if kind_total > 0.0:
        for code, kind_mass in zip(_KIND_REASONS, kind_masses, strict=True):
            if kind_mass > 0.0:
                points = round(engagement_points * kind_mass / kind_total, 2)
                ranked.append((-abs(points), code, points))
    if audience > 0.0:
        points = round(score - 1.0 - engagement_points, 2)
        ranked.append((-abs(points), "audience", points))
    regular, burst = mass.regular, mass.burst
    share, engagers, followers = mass.reciprocal_share, mass.engagers, state.followers
    quality = mass.quality
    z_without = {
        "new_account": _z(regular + burst, share, engagers, followers, model, False, quality)
    }
    if burst:
        z_without["burst"] = _z(regular, share, engagers, followers, model, True, quality)
    if share:
        z_without["reciprocity"] = _z(
            regular + burst, 0.0, engagers, followers, model, True, quality
        )
    if quality != 1.0:
        z_without["automation"] = _z(regular + burst, share, engagers, followers, model)
    for code, without in z_without.items():
        points = round(score - to_scale(without, knots), 2)
        if points != 0.0:
            ranked.append((-abs(points), code, points))
    ranked.sort()
    return [Reason(code, points) for _, code, points in ranked[: model.top_reasons]]


def topic_scores(state: UserState, mass: Mass, model: Model) -> list[TopicScore]:
    """Published topics, each scored as the user's influence on its shrunk share (§8)."""
    received = state.received
    if received is None or not state.topics:
        return []
    evidence = topic_evidence(
        state.topics, left_sum(received.kind_mass), sum(received.counts), model
    )
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
    state.history = record_change(state.history, state.landmark, now, score, previous, cause)
    why = tuple(reasons(state, mass, model, score))
    topics = tuple(topic_scores(state, mass, model)) if state.topics else ()
    quality = audience_quality(state, mass, model)
    return ScoreChange(
        user, score, previous, now, cause, why, topics, quality, confidence(state, mass)
    )
