"""User state: lossless compact serialisation, bounded size."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.engine import Engine
from pipeline.synthetic import GeneratorConfig, generate
from scoring import Event, Model, decode_state, encode_state, parse_event, read_mass, score_of
from scoring.errors import StateError
from scoring.model import DAY_MS


@pytest.fixture(scope="module")
def engine(model: Model) -> Engine:
    config = GeneratorConfig(users=300, days=40, seed=8, scenarios=("ring",))
    engine = Engine(model)
    for raw in generate(config):
        event = parse_event(raw)
        assert isinstance(event, Event)
        engine.process(event)
    return engine


def test_states_round_trip_to_the_same_scores(engine: Engine, model: Model) -> None:
    now = engine.now
    assert now is not None
    for user, state in engine.states.items():
        data = encode_state(state)
        restored = decode_state(data)
        assert encode_state(restored) == data, user  # a stored state is a fixed point
        later = now + DAY_MS
        before, after = read_mass(state, later, model), read_mass(restored, later, model)
        assert after.z == pytest.approx(before.z, rel=1e-5, abs=1e-9), user
        assert score_of(after, model) == pytest.approx(score_of(before, model), abs=0.011)
        assert restored.received is None or restored.received.counts == state.received.counts  # type: ignore[union-attr]


def test_per_user_maps_are_capped(engine: Engine, model: Model) -> None:
    """A generated population where every user acts daily: the caps hold for the busiest."""
    for state in engine.states.values():
        if state.received is not None:
            assert len(state.received.in_pairs) <= model.max_in_pairs * 5 // 4
            assert sum(len(w) for w in state.received.windows) <= 12 + 24 + 7
            assert len(state.received.buckets) <= model.open_days
        if state.acting is not None:
            assert len(state.acting.out_pairs) <= model.max_out_pairs * 5 // 4
            assert len(state.acting.recent_ids) <= model.dedup_ids
        assert len(state.topics) <= model.max_topics
        assert len(state.clock.runs) <= 2 * model.max_action_runs


def test_unknown_layouts_are_rejected() -> None:
    with pytest.raises(StateError):
        decode_state(b"[99, 0]")
    with pytest.raises(StateError):
        decode_state(b"not json")
    with pytest.raises(StateError):
        decode_state(b"[1, 0, [1]]")


def test_state_averages_under_a_kilobyte_on_a_real_stream(model: Model, higgs: Path) -> None:
    from itertools import islice

    from pipeline.sources import read_events

    engine = Engine(model)
    for event in islice(read_events(str(higgs)), 100_000):
        assert isinstance(event, Event)
        engine.process(event)
    sizes = [len(encode_state(state)) for state in engine.states.values()]
    assert sum(sizes) / len(sizes) <= 1024
