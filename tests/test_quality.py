"""Audience quality and confidence (scoring/quality.py): what they say about thin evidence,
rings and bought automation, and that GET /users/{id} carries them."""

from __future__ import annotations

from pipeline.api.replies import user_body
from pipeline.engine import Engine
from scoring import Model, read_mass
from scoring.quality import audience_quality, confidence
from tests.conftest import Events


def test_five_engagements_from_two_accounts_give_low_confidence(model: Model, ev: Events) -> None:
    engine = Engine(model)
    for n in range(5):
        engine.process(ev("retweet", f"fan{n % 2}", "thin", hour=n))
    for day in range(20):  # two new readers a day, each of them back every day
        for n in range(2 * day + 2):
            engine.process(ev("retweet", f"reader{n}", "solid", day=day, hour=n % 20))
    now = ev.at(20)
    thin, solid = engine.states["thin"], engine.states["solid"]
    low = confidence(thin, read_mass(thin, now, model))
    high = confidence(solid, read_mass(solid, now, model))
    assert low < 0.1 < 0.5 < high < 1.0, (low, high)


def test_a_ring_members_audience_is_mostly_not_real(model: Model, ev: Events) -> None:
    engine = Engine(model)
    ring = [f"r{i}" for i in range(6)]
    for hour in range(0, 48, 2):
        for a in ring:
            for b in ring:
                if a != b:
                    engine.process(ev("retweet", a, b, hour=hour))
    state = engine.states["r0"]
    quality = audience_quality(state, read_mass(state, ev.at(2), model), model)
    rules = [r.rule for r in quality.reasons]
    assert quality.score < 30.0, quality
    assert "pair_cap" in rules
    assert all(0.0 < r.share <= 1.0 for r in quality.reasons)


def test_an_independent_audience_keeps_a_high_quality(model: Model, ev: Events) -> None:
    engine = Engine(model)
    for n in range(40):
        engine.process(ev("retweet", f"reader{n}", "author", day=n // 2, hour=n % 20))
    state = engine.states["author"]
    quality = audience_quality(state, read_mass(state, ev.at(20), model), model)
    assert quality.score > 80.0, quality


def test_the_user_reply_carries_both(model: Model, ev: Events) -> None:
    engine = Engine(model)
    engine.process(ev("retweet", "a", "b"))
    body = user_body("b", engine.states["b"], ev.at(0, 1), model)
    assert set(body["audience_quality"]) == {"score", "reasons"}  # type: ignore[arg-type]
    assert 0.0 < body["confidence"] < 0.1  # type: ignore[operator]
