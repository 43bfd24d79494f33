"""pipeline.codec: which reason a refused event time gets, and the ids and fields of what the
pipeline writes (score events, dead letters) as the docs describe them."""

from __future__ import annotations

import orjson
import pytest

from pipeline.codec import (
    DeadLetter,
    decode_higgs_line,
    decode_json_event,
    refuse_future,
    score_change_json,
)
from scoring import Event, Invalid, ScoreChange
from scoring.events import MAX_TS_MS, MIN_TS_MS
from scoring.model import DAY_MS
from scoring.quality import PERFECT, AudienceQuality, QualityReason

NOW = 1_795_000_000_000
"""2026-11-18: the worker's wall clock in these tests."""
DAY = DAY_MS
YEAR_2500 = 16_725_225_600_000


def line(ts: int, **fields: object) -> bytes:
    event = {"id": "e1", "kind": "retweet", "ts": ts, "actor": "a", "target": "b", **fields}
    return orjson.dumps(event)


def worker_reason(data: bytes, now: int = NOW, max_ahead: int = DAY) -> str | None:
    """The reason the worker gives (`Pipeline.decode_input`): a time ahead of its clock is
    reported as such before the decoder's own refusal; None for an accepted event."""
    decoded = decode_json_event(data)
    future = refuse_future(decoded, now, max_ahead)
    if future is not None:
        return future.reason
    return decoded.reason if isinstance(decoded, Invalid) else None


@pytest.mark.parametrize("ts", [MAX_TS_MS + 1, YEAR_2500, 2**63 - 1])
def test_a_time_past_the_window_and_ahead_of_the_clock_is_ts_in_future(ts: int) -> None:
    assert worker_reason(line(ts)) == "ts_in_future"
    refused = refuse_future(decode_json_event(line(ts)), NOW, DAY)
    assert refused is not None and "2079-12-31" in refused.detail


@pytest.mark.parametrize("ts", [1000, MIN_TS_MS - 1, -1, -(2**63)])
def test_a_time_before_the_window_is_bad_value(ts: int) -> None:
    assert worker_reason(line(ts)) == "bad_value"


def test_a_time_past_the_window_within_the_allowance_stays_bad_value() -> None:
    """An allowance reaching past 2079 (a worker told to accept anything ahead): the time is
    not too far ahead of the clock, only outside what the model can score."""
    assert worker_reason(line(YEAR_2500), max_ahead=2**62) == "bad_value"


def test_inside_the_window_only_the_clock_decides() -> None:
    assert worker_reason(line(MIN_TS_MS)) is None
    assert worker_reason(line(NOW + DAY)) is None
    assert worker_reason(line(NOW + DAY + 1)) == "ts_in_future"
    assert worker_reason(line(MAX_TS_MS)) == "ts_in_future"


def test_files_keep_bad_value_for_any_time_outside_the_window() -> None:
    """Replays (no clock) dead-letter outside the window as the compiled core's reader does."""
    for ts in (1000, MAX_TS_MS + 1, YEAR_2500):
        decoded = decode_json_event(line(ts))
        assert isinstance(decoded, Invalid) and decoded.reason == "bad_value"
    higgs = decode_higgs_line(f"1 2 {YEAR_2500 // 1000} RT".encode(), 7)
    assert isinstance(higgs, Invalid) and higgs.reason == "bad_value"
    assert refuse_future(higgs, NOW, DAY) is not None


def test_other_refusals_are_not_mistaken_for_a_time() -> None:
    for data in (
        line(YEAR_2500, kind="like"),  # unknown_kind comes first
        line(NOW, actor="x" * 300),  # bad_value, but of an id
        b"{not json",
    ):
        decoded = decode_json_event(data)
        assert isinstance(decoded, Invalid)
        assert refuse_future(decoded, NOW, DAY) is None
        assert worker_reason(data) == decoded.reason != "ts_in_future"


def test_score_event_id_ends_in_the_id_of_what_caused_it() -> None:
    """`user:event_time:cause id`: the input event's id, or `decay:<day>` (pipeline.engine)."""
    change = ScoreChange("u:1", 12.5, None, 1_735_689_600_000, "engagement", (), (), PERFECT, 0.0)
    body = orjson.loads(score_change_json(change, "e42", "1.0.0+x"))
    assert body["id"] == "u:1:1735689600000:e42"
    assert body["cause"] == "engagement"
    decay = ScoreChange("u", 12.5, 14.0, 20_089 * DAY, "decay", (), (), PERFECT, 0.0)
    assert orjson.loads(score_change_json(decay, "decay:20089", "v"))["id"] == (
        "u:1735689600000:decay:20089"
    )


def test_score_events_carry_audience_quality_and_confidence() -> None:
    """Issue 14: the two numbers besides the score travel with every score-change event."""
    quality = AudienceQuality(
        62.5, (QualityReason("reciprocity", 0.25), QualityReason("burst", 0.125))
    )
    change = ScoreChange("u", 40.0, 38.0, 1_735_689_600_000, "engagement", (), (), quality, 0.31)
    body = orjson.loads(score_change_json(change, "e1", "v"))
    assert body["audience_quality"] == {
        "score": 62.5,
        "reasons": [{"rule": "reciprocity", "share": 0.25}, {"rule": "burst", "share": 0.125}],
    }
    assert body["confidence"] == 0.31


def test_dead_letter_fields() -> None:
    letter = DeadLetter("bad_json", "detail", b"\xff{", "tweets", 17, 3).to_json()
    assert orjson.loads(letter) == {
        "type": "influence.dead_letter.v1",
        "reason": "bad_json",
        "detail": "detail",
        "source": "tweets",
        "partition": 3,
        "position": 17,
        "raw": "\\xff{",
    }


def test_refuse_future_still_takes_events() -> None:
    event = Event("e", "retweet", NOW + 2 * DAY, "a", "b")
    refused = refuse_future(event, NOW, DAY)
    assert refused is not None and refused.reason == "ts_in_future"
    assert refuse_future(event._replace(ts=NOW), NOW, DAY) is None
