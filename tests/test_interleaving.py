"""Final state does not depend on how actor steps and target steps interleave (§12).

In Kafka the actor's step and the target's step run on different partitions, joined by a
repartition topic, so a target may see engagements late and in any order relative to its own
actions. Hypothesis draws streams and interleavings; every order must give the same final
state as the embedded engine's strict sequence (within float rounding).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.engine import Engine
from scoring import (
    Engagement,
    Event,
    Model,
    UserState,
    apply_action,
    apply_engagement,
    load_model,
    new_user_state,
    read_mass,
)
from scoring.model import DAY_MS
from scoring.topics import topic_evidence
from scoring.windows import read_windows
from tests.conftest import T0

MODEL = load_model()
USERS = [f"u{i}" for i in range(5)]
TAGS = ["golf", "ducks", "higgs"]
SPAN_MS = int(2.5 * DAY_MS)  # inside the lateness horizon (open_days), where order cannot matter


@st.composite
def streams(draw: st.DrawFn) -> list[Event]:
    size = draw(st.integers(1, 40))
    events = []
    for i in range(size):
        kind = draw(st.sampled_from(["tweet", "retweet", "quote", "reply", "mention"]))
        actor = draw(st.sampled_from(USERS))
        target = None if kind == "tweet" else draw(st.sampled_from(USERS))
        tags = tuple(draw(st.lists(st.sampled_from(TAGS), max_size=2, unique=True)))
        ref = tuple(draw(st.lists(st.sampled_from(TAGS), max_size=2, unique=True)))
        events.append(
            Event(
                id=f"e{i}",
                kind=kind,
                ts=T0 + draw(st.integers(0, SPAN_MS)),
                actor=actor,
                target=target,
                tweet_id=f"t{i}",
                ref_tweet_id=None if target is None else f"t{draw(st.integers(0, 5))}",
                hashtags=tags if kind in ("tweet", "quote", "reply") else (),
                ref_hashtags=() if target is None else ref,
                followers=draw(st.none() | st.integers(0, 10_000)),
            )
        )
    events.sort(key=lambda e: (e.ts, e.id))
    return events


def _state(states: dict[str, UserState], user: str, ts: int) -> UserState:
    if user not in states:
        states[user] = new_user_state(ts)
    return states[user]


def interleaved(events: list[Event], data: st.DataObject, model: Model) -> dict[str, UserState]:
    """Actor steps in stream order; each target step delivered at a drawn later moment."""
    states: dict[str, UserState] = {}
    pending: list[Engagement] = []

    def deliver(index: int) -> None:
        engagement = pending.pop(index)
        apply_engagement(_state(states, engagement.target, engagement.ts), engagement, model)

    for event in events:
        while pending and data.draw(st.booleans()):
            deliver(data.draw(st.integers(0, len(pending) - 1)))
        result = apply_action(_state(states, event.actor, event.ts), event, model)
        if result.engagement is not None:
            pending.append(result.engagement)
    while pending:
        deliver(data.draw(st.integers(0, len(pending) - 1)))
    return states


def observable(state: UserState, now: int, model: Model) -> dict[str, object]:
    mass = read_mass(state, now, model)
    received = state.received
    topics = topic_evidence(
        state.topics,
        sum(received.kind_mass) if received else 0.0,
        sum(received.counts) if received else 0,
        model,
    )
    return {
        "mass": (mass.fast, mass.slow, mass.burst, mass.reciprocal_share, mass.engagers, mass.z),
        "counts": list(received.counts) if received else None,
        "windows": read_windows(received.windows, now, model.minute_bucket_ms)
        if received
        else None,
        "topics": [
            (t.topic, t.published, t.own_tweets, t.days, t.engagers, t.engagements) for t in topics
        ],
        "paused": mass.paused_days,
    }


@settings(max_examples=150, deadline=None)
@given(events=streams(), data=st.data())
def test_final_state_is_independent_of_interleaving(
    events: list[Event], data: st.DataObject
) -> None:
    engine = Engine(MODEL)
    for event in events:
        engine.process(event)
    shuffled = interleaved(events, data, MODEL)
    now = T0 + SPAN_MS + DAY_MS
    assert set(shuffled) == set(engine.states)
    for user, state in engine.states.items():
        expected = observable(state, now, MODEL)
        actual = observable(shuffled[user], now, MODEL)
        assert actual["counts"] == expected["counts"]
        assert actual["windows"] == expected["windows"]
        assert actual["topics"] == expected["topics"]
        assert actual["paused"] == expected["paused"]
        assert actual["mass"] == pytest.approx(expected["mass"], rel=1e-9, abs=1e-12)
