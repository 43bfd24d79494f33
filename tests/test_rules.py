"""Each rule of SCORING.md against its closed form: model 1's rules, which model 2 keeps and
builds on (its own terms are held to their bounds in tests/test_scenarios.py and
tests/test_adversaries.py, and to the Python core by tests/test_native.py)."""

from __future__ import annotations

import math

import pytest

from pipeline.engine import Engine
from scoring import Model, apply_action, load_model, new_user_state, read_mass
from scoring.acting import automation, pair_factor, selectivity
from scoring.mass import burst_curve, day_share
from scoring.model import DAY_MS, HOUR_MS, parse_model
from scoring.state import DayBucket
from tests.conftest import T0, Events


@pytest.fixture
def model() -> Model:
    """Model 1 by name: these closed forms are its mass (model 2, the default, scores distinct
    engagers instead)."""
    return load_model("v1")


def engine_with(model: Model, *events: object) -> Engine:
    engine = Engine(model)
    for event in events:
        engine.process(event)  # type: ignore[arg-type]
    return engine


def test_fast_decay_of_one_retweet_is_exponential(model: Model, ev: Events) -> None:
    engine = engine_with(model, ev("retweet", "a", "u", day=0, hour=6))
    state = engine.states["u"]
    regular = burst_curve(1.0, model.kappa)  # one retweet, under the burst floor: G(1)
    for days in (1, 10, 45, 90):
        now = ev.at(0, 6) + days * DAY_MS
        expected = regular * math.exp(-model.fast_rate * days * DAY_MS)
        assert read_mass(state, now, model).fast == pytest.approx(expected, rel=1e-9)
    half = read_mass(state, ev.at(0, 6) + 45 * DAY_MS, model).fast
    assert half == pytest.approx(regular / 2, rel=1e-9)


def test_slow_floor_takes_over_after_long_silence(model: Model, ev: Events) -> None:
    engine = engine_with(model, ev("retweet", "a", "u", day=0))
    state = engine.states["u"]
    regular = burst_curve(1.0, model.kappa)
    for days in (5, 200):
        now = T0 + days * DAY_MS
        mass = read_mass(state, now, model)
        slow = model.slow_floor * regular * math.exp(-model.slow_rate * days * DAY_MS)
        assert mass.slow == pytest.approx(slow * model.slow_to_fast, rel=1e-9)
        assert mass.regular == max(mass.fast, mass.slow)
    assert (
        read_mass(state, T0 + 5 * DAY_MS, model).fast
        > read_mass(state, T0 + 5 * DAY_MS, model).slow
    )
    late = read_mass(state, T0 + 200 * DAY_MS, model)
    assert late.slow > late.fast  # the floor is in force after ~4 fast half-lives


def test_grace_pauses_fast_decay_for_a_silence(model: Model, ev: Events) -> None:
    engine = engine_with(model, ev("tweet", "u", day=0), ev("retweet", "a", "u", day=0, hour=1))
    state = engine.states["u"]
    regular = burst_curve(1.0, model.kappa)
    # Days 1..10 are whole silent days: all paused, only day 0's hours and day 11's count.
    now = ev.at(11, 0)
    charged = now - ev.at(0, 1) - 10 * DAY_MS
    assert read_mass(state, now, model).fast == pytest.approx(
        regular * math.exp(-model.fast_rate * charged), rel=1e-9
    )
    # A 40-day silence: only grace_days are paused.
    now = ev.at(41, 0)
    charged = now - ev.at(0, 1) - model.grace_days * DAY_MS
    mass = read_mass(state, now, model)
    assert mass.paused_days == model.grace_days
    assert mass.fast == pytest.approx(regular * math.exp(-model.fast_rate * charged), rel=1e-9)


def test_grace_renews_only_after_the_period(model: Model, ev: Events) -> None:
    # Silence of 15 days, back for a day, silence again: 6 days of grace are left, not 21.
    events = [ev("tweet", "u", day=0), ev("tweet", "u", day=16), ev("retweet", "a", "u", day=16)]
    state = engine_with(model, *events).states["u"]
    mass = read_mass(state, ev.at(40), model)
    assert mass.paused_days == 15 + (model.grace_days - 15)
    # 90 days after the first pause began, a new silence gets the full allowance again.
    events = [ev("tweet", "u", day=0), ev("tweet", "u", day=100), ev("retweet", "a", "u", day=100)]
    state = engine_with(model, *events).states["u"]
    assert read_mass(state, ev.at(130), model).paused_days == 2 * model.grace_days


def test_burst_curve_and_day_split(model: Model) -> None:
    kappa = model.kappa
    assert burst_curve(10.0, kappa) == pytest.approx(kappa * math.log(1 + 10.0 / kappa))
    bucket = DayBucket(day=0, raw=100.0, content=40.0, fast=100.0, slow=100.0, burst=100.0)
    share = day_share(bucket, baseline_raw=8.0, baseline_engagers=0.0, model=model)
    g_total, g_base = burst_curve(100.0, kappa), burst_curve(8.0, kappa)
    assert share.regular * 100.0 == pytest.approx(g_base)
    weight = (40.0 * model.content_excess_weight + 60.0 * model.mention_excess_weight) / 100.0
    assert share.excess * 100.0 == pytest.approx((g_total - g_base) * weight)
    quiet = day_share(DayBucket(0, raw=2.0, content=2.0), 0.0, 0.0, model)
    assert quiet.regular * 2.0 == pytest.approx(burst_curve(2.0, kappa))  # under the floor
    assert quiet.excess == 0.0


def test_new_engagers_above_baseline_count_little(model: Model) -> None:
    bucket = DayBucket(day=0, raw=1.0, content=1.0, new_engagers=500)
    share = day_share(bucket, 1.0, 2.0, model)
    base = model.engager_baseline_floor
    assert share.engagers == base
    expected = burst_curve(500, model.kappa) - burst_curve(base, model.kappa)
    assert share.burst_engagers == pytest.approx(expected * model.engager_excess_weight)


@pytest.mark.parametrize(
    ("engagers", "effective"), [(1, 0.15183714985330937), (3, 0.880691393084014)]
)
def test_shrinkage_by_distinct_engagers(
    model: Model, ev: Events, engagers: int, effective: float
) -> None:
    """E_eff = G(X)·decay·n/(n + 5), from SCORING.md's constants, not from the fields read back.

    n accounts retweet a new user once each at midnight; read an hour later. The day's total
    X = n is at most the burst floor (3), so all of G(X) = 5·ln(1 + X/5) is regular mass, it
    decays for one hour at a 45-day half-life, nothing is reciprocal, and shrinkage keeps
    n/(n + 5). The literal is that expression's value, so a wrong prior, a shrinkage by raw
    mass instead of engagers or a missing shrinkage all fail here.
    """
    mass = read_mass(
        engine_with(model, *(ev("retweet", f"a{i}", "u") for i in range(engagers))).states["u"],
        ev.at(0, 1),
        model,
    )
    spec = 5.0 * math.log(1.0 + engagers / 5.0) * 0.5 ** (1 / (45 * 24)) * engagers / (engagers + 5)
    assert spec == pytest.approx(effective, rel=1e-12)
    assert mass.engagers == engagers
    assert mass.effective == pytest.approx(effective, rel=1e-9)


def test_selectivity_pair_and_automation_factors(model: Model) -> None:
    assert selectivity(1, model) == 1.0
    assert selectivity(20, model) == 1.0
    assert selectivity(80, model) == pytest.approx(0.5)
    assert pair_factor(0.0) == 1.0
    assert pair_factor(1.0) == 0.25
    assert automation(30.0, model) == 1.0
    assert automation(90.0, model) == pytest.approx(0.6)
    assert automation(150.0, model) == pytest.approx(0.2)
    assert automation(1000.0, model) == pytest.approx(0.2)


def test_actor_discounts_follow_the_actor_history(model: Model, ev: Events) -> None:
    state = new_user_state(T0)
    results = [
        apply_action(state, ev("retweet", "a", f"t{i}", hour=i / 10), model) for i in range(80)
    ]
    factors = [r.engagement.selectivity for r in results if r.engagement]
    assert factors[19] == 1.0 and factors[79] == pytest.approx(0.5)
    again = apply_action(state, ev("retweet", "a", "t0", hour=9), model).engagement
    earlier = math.exp(-model.actor_pair_rate * 9 * HOUR_MS)  # one retweet 9 h ago, decayed
    assert again is not None and again.pair == pytest.approx(1 / (1 + earlier) ** 2, rel=1e-9)
    mention = apply_action(state, ev("mention", "a", "t0", hour=9), model).engagement
    assert mention is not None and mention.pair == 1.0  # counters are per input topic
    assert mention.selectivity == 1.0


def test_reciprocity_is_symmetric_and_retroactive(model: Model, ev: Events) -> None:
    forward = engine_with(model, ev("retweet", "a", "u"), ev("retweet", "u", "a", hour=1))
    backward = engine_with(model, ev("retweet", "u", "a"), ev("retweet", "a", "u", hour=1))
    now = ev.at(1)
    for engine in (forward, backward):
        assert read_mass(engine.states["u"], now, model).reciprocal_share == 1.0
        assert read_mass(engine.states["u"], now, model).effective == 0.0
    one_way = engine_with(model, ev("retweet", "a", "u"))
    assert read_mass(one_way.states["u"], now, model).reciprocal_share == 0.0


def test_self_engagement_and_duplicates_are_not_counted(model: Model, ev: Events) -> None:
    retweet = ev("retweet", "a", "u")
    engine = engine_with(model, retweet, retweet, ev("mention", "u", "u"))
    assert engine.stats.duplicates == 1
    assert engine.stats.self_engagements == 1
    received = engine.states["u"].received
    assert received is not None and received.counts == [1, 0, 0, 0]


def test_model_version_is_semver_plus_content_hash(model: Model) -> None:
    from importlib import resources

    text = resources.files("scoring").joinpath("models/v1.toml").read_text("utf-8")
    assert model.model_version.startswith("1.0.0+") and len(model.model_version) == 14
    assert parse_model(text).model_version == model.model_version
    changed = parse_model(text.replace("retweet = 1.0", "retweet = 1.1"))
    assert changed.model_version != model.model_version


def test_windows_count_received_per_kind(model: Model, ev: Events) -> None:
    from scoring.windows import read_windows

    events = [ev("retweet", f"a{i}", "u", hour=i) for i in range(30)]
    events.append(ev("mention", "b", "u", hour=29.5))
    state = engine_with(model, *events).states["u"]
    assert state.received is not None
    now = ev.at(0, 29.9)
    windows = read_windows(state.received.windows, now, model.minute_bucket_ms)
    assert windows["1h"] == {"retweet": 1, "quote": 0, "reply": 0, "mention": 1}  # h29, h29.5
    assert windows["24h"]["retweet"] == 24  # hours 6..29
    assert windows["7d"]["retweet"] == 30
    assert (
        read_windows(state.received.windows, now + 8 * DAY_MS, model.minute_bucket_ms)["7d"][
            "retweet"
        ]
        == 0
    )
