"""Every score can say why (§9): sums per kind, what each discount removed, decay and grace,
the top contributors and the topics with their evidence."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from scoring.events import ENGAGEMENT_KINDS
from scoring.fold import left_sum
from scoring.mass import read_mass
from scoring.model import Model
from scoring.score import Reason, TopicScore, reasons, score_of, topic_scores
from scoring.state import UserState
from scoring.topics import TopicEvidence, topic_evidence
from scoring.windows import read_windows

DISCOUNTS = ("selectivity", "pair", "automation")


@dataclass(frozen=True, slots=True)
class Contributor:
    user: str
    mass: float
    reciprocal: bool


@dataclass(frozen=True, slots=True)
class Explanation:
    score: float
    mass: float
    """z, the raw influence before the 1-100 mapping."""
    effective_mass: float
    kind_sums: dict[str, float]
    """Contributions received per kind, decayed to now (after the actor-side discounts)."""
    removed: dict[str, float]
    """Mass each discount took away, decayed to now."""
    decay: dict[str, float]
    """Fast and slow (floor) mass, which is in force, and grace days not charged."""
    counts: dict[str, int]
    windows: dict[str, dict[str, int]]
    top_contributors: tuple[Contributor, ...]
    topics: tuple[TopicEvidence, ...]
    topic_scores: tuple[TopicScore, ...]
    reasons: tuple[Reason, ...]

    def as_dict(self) -> dict[str, object]:
        body = asdict(self)
        body["topic_scores"] = tuple(t._asdict() for t in self.topic_scores)
        body["reasons"] = tuple(r._asdict() for r in self.reasons)
        return body


def explain(state: UserState, now: int, model: Model) -> Explanation:
    """The full explanation of a user's score at event time `now`."""
    mass = read_mass(state, now, model)
    received = state.received
    decay = math.exp(-model.fast_rate * (now - state.landmark))
    if received is None:
        kind_sums = dict.fromkeys(ENGAGEMENT_KINDS, 0.0)
        removed = dict.fromkeys(DISCOUNTS, 0.0)
        counts = dict.fromkeys(ENGAGEMENT_KINDS, 0)
        windows = read_windows([[], [], []], now, model.minute_bucket_ms)
        contributors: tuple[Contributor, ...] = ()
        evidence: list[TopicEvidence] = []
    else:
        kind_sums = {
            k: m * decay for k, m in zip(ENGAGEMENT_KINDS, received.kind_mass, strict=True)
        }
        removed = {k: m * decay for k, m in zip(DISCOUNTS, received.removed, strict=True)}
        counts = dict(zip(ENGAGEMENT_KINDS, received.counts, strict=True))
        windows = read_windows(received.windows, now, model.minute_bucket_ms)
        pair_decay = math.exp(-model.reciprocity_rate * (now - state.landmark))
        ranked = sorted(received.in_pairs.items(), key=lambda kv: (-kv[1].mass, kv[0]))
        contributors = tuple(
            Contributor(user, pair.mass * pair_decay, pair.reciprocal)
            for user, pair in ranked[: model.top_contributors]
        )
        evidence = topic_evidence(
            state.topics, left_sum(received.kind_mass), sum(received.counts), model
        )
    regular = mass.regular
    total = regular + mass.burst
    after_reciprocity = total * (1.0 - mass.reciprocal_share**2)
    removed["burst_excess_kept"] = mass.burst
    removed["reciprocity"] = total - after_reciprocity
    removed["shrinkage"] = after_reciprocity - mass.effective
    return Explanation(
        score=score_of(mass, model),
        mass=mass.z,
        effective_mass=mass.effective,
        kind_sums=kind_sums,
        removed=removed,
        decay={
            "fast_mass": mass.fast,
            "slow_floor_mass": mass.slow,
            "floor_in_force": float(mass.slow > mass.fast),
            "grace_days_used": float(mass.paused_days),
        },
        counts=counts,
        windows=windows,
        top_contributors=contributors,
        topics=tuple(evidence),
        topic_scores=tuple(topic_scores(state, mass, model)),
        reasons=tuple(reasons(state, mass, model)),
    )
