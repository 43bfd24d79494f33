"""`event_to_dict` (scoring/events.py) writes the v1 JSON object the producer sends and the
benchmarks replay: every field that is set, nothing that is not, and what `parse_event` reads
back as the same event."""

from __future__ import annotations

from scoring.events import Event, event_to_dict, parse_event

FULL: dict[str, object] = {
    "id": "e1",
    "kind": "quote",
    "ts": 1_735_689_600_000,
    "actor": "alice",
    "target": "bob",
    "tweet_id": "t2",
    "ref_tweet_id": "t1",
    "hashtags": ["higgs", "lhc"],
    "ref_hashtags": ["cern"],
    "followers": 42,
}


def test_every_set_field_is_written_in_v1_order() -> None:
    event = parse_event(FULL)
    assert isinstance(event, Event)
    out = event_to_dict(event)
    assert out == FULL
    assert list(out) == list(FULL)
    assert parse_event(out) == event


def test_absent_optional_fields_are_left_out() -> None:
    tweet = Event(id="e2", kind="tweet", ts=1_735_689_600_001, actor="carol")
    assert event_to_dict(tweet) == {
        "id": "e2",
        "kind": "tweet",
        "ts": 1_735_689_600_001,
        "actor": "carol",
    }
    retweet = Event(id="e3", kind="retweet", ts=1_735_689_600_002, actor="dan", target="carol")
    assert event_to_dict(retweet) == {
        "id": "e3",
        "kind": "retweet",
        "ts": 1_735_689_600_002,
        "actor": "dan",
        "target": "carol",
    }
    assert parse_event(event_to_dict(retweet)) == retweet


def test_zero_followers_is_written_and_tags_are_lists() -> None:
    event = Event(
        id="e4", kind="tweet", ts=1_735_689_600_003, actor="erin", hashtags=("a",), followers=0
    )
    out = event_to_dict(event)
    assert out["followers"] == 0
    assert out["hashtags"] == ["a"] and type(out["hashtags"]) is list
    assert "ref_hashtags" not in out and "target" not in out
    only_ref = Event(
        id="e5",
        kind="retweet",
        ts=1_735_689_600_004,
        actor="f",
        target="erin",
        ref_hashtags=("a", "b"),
    )
    out = event_to_dict(only_ref)
    assert out["ref_hashtags"] == ["a", "b"] and type(out["ref_hashtags"]) is list
    assert "hashtags" not in out
