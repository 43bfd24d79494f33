"""`influence subscribe`'s filtering and printing, on real score-change events of a replay."""

from __future__ import annotations

import io

import orjson
import pytest

from pipeline.replay import replay
from pipeline.subscribe import Filter, decode, delta, format_change, json_line
from scoring import Model
from scoring.events import event_to_dict
from tests.conftest import Events


@pytest.fixture
def changes(tmp_path, model: Model, ev: Events) -> list[dict[str, object]]:
    stream = [ev("tweet", "star", tweet_id="t1")]
    stream += [ev("retweet", f"fan{i}", "star", hour=i, ref_tweet_id="t1") for i in range(12)]
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(event_to_dict(e)) for e in stream))
    out = io.BytesIO()
    replay([str(path)], model, events_out=out, show_progress=False)
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


def test_a_change_prints_as_one_readable_line(changes: list[dict[str, object]]) -> None:
    first, later = changes[0], changes[-1]
    user, decoded = decode(b"star", orjson.dumps(first))
    assert user == "star" and decoded == first
    line = format_change(user, decoded)
    assert line.startswith("2025-01-01T") and "star" in line and "(   new)" in line
    assert f"{first['score']:6.2f}" in line and "engagement" in line and "retweets +" in line
    line = format_change("star", later)
    assert f"{delta(later):+.2f}" in line and "\n" not in line
    assert format_change("gone", None).endswith("forgotten (tombstone)")


def test_filters(changes: list[dict[str, object]]) -> None:
    deltas = [abs(delta(c)) for c in changes]
    threshold = sorted(deltas)[len(deltas) // 2]
    big = Filter(min_delta=threshold)
    assert [c for c in changes if big.wants("star", c)] == [
        c for c, d in zip(changes, deltas, strict=True) if d >= threshold
    ]
    only = Filter(users=frozenset({"someone"}))
    assert not any(only.wants("star", c) for c in changes)
    assert only.wants("someone", None) and Filter(min_delta=1e9).wants("x", None)


def test_malformed_messages_are_reported_not_raised() -> None:
    for key, value in ((b"u", b"{nope"), (b"u", b"[1]"), (None, None), (b"u", b'{"user":"u"}')):
        with pytest.raises(ValueError):
            decode(key, value)
    assert decode(b"u1", None) == ("u1", None)
    assert orjson.loads(json_line("u1", None)) == {"user": "u1", "forgotten": True}
