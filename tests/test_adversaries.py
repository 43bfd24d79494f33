"""Adversaries designed against model 1's rules (pipeline/synthetic: slow_ring, follow_train,
engagement_pod), each held down under every bundled model version.

docs/model.md tabulates what each version gives them; the numbers in the comments below are
those measurements (compiled core, the scenario kit's 45-day background of 400 users)."""

from __future__ import annotations

import random

import pytest

from pipeline.synthetic.engagement_pod import (
    POD_DAYS,
    POD_LIFE_DAYS,
    pod_events,
    pod_life_events,
    pod_members,
)
from pipeline.synthetic.follow_train import follow_train_events, train_riders
from pipeline.synthetic.ring import ring_members
from pipeline.synthetic.slow_ring import SLOW_RING_DAYS, SLOW_RING_PREFIX, slow_ring_events
from scoring import Model
from scoring.model import DAY_MS
from tests.scenario_kit import (
    END,
    VERSIONS,
    background_events,
    background_users,
    bundled_model,
    run,
)

BOTTOM = 0.20
"""A ring-like adversary's median member must sit at or below this quantile of engaged users."""
POD_GAIN_POINTS = 5.0
"""A pod may lift its median member by at most this much over the same member without it."""


@pytest.fixture(scope="module", params=VERSIONS)
def model(request: pytest.FixtureRequest) -> Model:
    return bundled_model(request.param)


@pytest.fixture(scope="module")
def background() -> list[dict[str, object]]:
    return background_events()


def median_quantile(model: Model, background: list, stream: list, members: list[str]) -> float:
    """Where the median member sits among engaged users at the end (0 bottom, 1 top)."""
    result = run(model, background, stream)
    engaged = result.engaged_scores(END)
    scores = sorted(result.score(m, END) for m in members)
    median = scores[len(scores) // 2]
    assert len(engaged) > 300
    return sum(1 for s in engaged if s < median) / len(engaged)


def test_a_slow_ring_under_the_burst_rules_sinks(model: Model, background: list) -> None:
    stream = slow_ring_events(END - SLOW_RING_DAYS * DAY_MS)
    members = ring_members(prefix=SLOW_RING_PREFIX)
    where = median_quantile(model, background, stream, members)
    print(f"slow ring under {model.model_version}: median member at quantile {where:.3f}")
    assert where <= BOTTOM


def test_a_follow_train_sinks(model: Model, background: list) -> None:
    stream = follow_train_events(END - 4 * DAY_MS)
    where = median_quantile(model, background, stream, train_riders())
    print(f"follow train under {model.model_version}: median rider at quantile {where:.3f}")
    assert where <= BOTTOM


def test_an_engagement_pod_adds_little(model: Model, background: list) -> None:
    rng = random.Random(15)
    users = background_users(background)
    life = pod_life_events(END - POD_LIFE_DAYS * DAY_MS, engagers=users, rng=rng)
    pod = pod_events(END - POD_DAYS * DAY_MS)
    with_pod = run(model, background, life, pod)
    without = run(model, background, life)
    gains = sorted(with_pod.score(m, END) - without.score(m, END) for m in pod_members())
    median_without = sorted(without.score(m, END) for m in pod_members())[len(gains) // 2]
    gain = gains[len(gains) // 2]
    print(
        f"engagement pod under {model.model_version}: median member {median_without:.2f} "
        f"without the pod, median gain {gain:+.2f} points"
    )
    assert gain <= POD_GAIN_POINTS
    assert 10.0 <= median_without <= 95.0  # the members have real lives worth protecting
