"""A stored state reads back as the same state (scoring/state.py), not only as the same score.

tests/test_state.py checks that a restored state scores the same and re-encodes to the same
bytes; neither notices a field the encoding drops, because dropping it keeps both true: mutmut
showed `state_to_row` storing no acting state at all (the actor's day and hour counters, its
pair counts and the ids it deduplicates with) and `_topic_row` no per-tweet masses, unnoticed.
A worker restored from its changelog after such a loss would discount the actor's next actions
wrongly and count a redelivered event twice.
"""

from __future__ import annotations

import pytest

from scoring import (
    Model,
    apply_action,
    apply_engagement,
    decode_state,
    encode_state,
    new_user_state,
)
from tests.conftest import T0, Events


def test_acting_received_and_topic_fields_survive_a_round_trip(model: Model, ev: Events) -> None:
    state = new_user_state(T0)
    for i, target in enumerate(("bob", "carol", "bob")):
        apply_action(state, ev("retweet", "alice", target, hour=i + 1.0), model)
    apply_action(state, ev("tweet", "alice", hour=4.0, tweet_id="t1", hashtags=("higgs",)), model)
    other = new_user_state(T0)
    engagement = apply_action(
        other,
        ev("retweet", "dan", "alice", hour=5.0, ref_tweet_id="t1", ref_hashtags=("higgs",)),
        model,
    ).engagement
    assert engagement is not None
    apply_engagement(state, engagement, model)

    restored = decode_state(encode_state(state))

    assert state.acting is not None and restored.acting is not None
    assert restored.acting.counters == state.acting.counters
    assert restored.acting.recent_ids == state.acting.recent_ids
    assert list(restored.acting.out_pairs) == ["bob", "carol"]
    for user, counts in state.acting.out_pairs.items():
        assert restored.acting.out_pairs[user] == pytest.approx(counts, rel=1e-6)
    topic, back = state.topics["higgs"], restored.topics["higgs"]
    assert (back.own_tweets, back.days, back.count, back.engagers) == (
        topic.own_tweets, topic.days, topic.count, topic.engagers,
    )  # fmt: skip
    assert topic.tweets and back.tweets == pytest.approx(topic.tweets, rel=1e-6)
    assert state.received is not None and restored.received is not None
    assert restored.received.counts == state.received.counts
    assert list(restored.received.in_pairs) == ["dan"]
    assert (restored.published, restored.last_ts) == (state.published, state.last_ts)


def test_a_user_who_never_acted_reads_back_without_acting_state(model: Model, ev: Events) -> None:
    state = new_user_state(T0)
    engagement = apply_action(new_user_state(T0), ev("retweet", "x", "y", hour=1.0), model)
    assert engagement.engagement is not None
    apply_engagement(state, engagement.engagement, model)
    restored = decode_state(encode_state(state))
    assert state.acting is None and restored.acting is None
    assert restored.received is not None and restored.received.counts == state.received.counts  # type: ignore[union-attr]
