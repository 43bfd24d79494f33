"""Score history (scoring/history.py, issue 15): what is kept, how it is stored, what it costs."""

from __future__ import annotations

import orjson
import pytest

from pipeline.engine import Engine
from pipeline.native_engine import NativeEngine
from pipeline.synthetic import GeneratorConfig, generate
from scoring import Event, Model, decode_state, encode_state, parse_event
from scoring.errors import StateError
from scoring.history import (
    HISTORY_CHANGES,
    HISTORY_DAYS,
    PACK_ALPHABET,
    PACK_LAST,
    ScoreHistory,
    history_body,
    history_from_row,
    history_to_row,
    pack,
    record_change,
    unpack,
)
from scoring.model import DAY_MS
from scoring.state import state_from_row, state_to_row

T0 = 1_735_689_600_000
HISTORY_BUDGET_BYTES = 400
"""Issue 15: at most this many extra bytes a user with a score."""


def test_a_day_without_a_change_closes_where_the_day_before_did() -> None:
    h = record_change(None, T0, T0 + 65_000, 10.5, None, "engagement")
    h = record_change(h, T0, T0 + 2 * DAY_MS + 1, 12.0, 10.5, "decay")
    h = record_change(h, T0, T0 + 2 * DAY_MS + 179_000, 12.25, 12.0, "topics")
    assert h.closes == [1050, 1050, 1225]
    body = history_body(h, T0)
    assert body["daily"] == {"start": T0, "scores": [10.5, 10.5, 12.25]}
    assert body["changes"] == [
        {"event_time": T0 + 60_000, "score": 10.5, "previous": None, "cause": "engagement"},
        {"event_time": T0 + 2 * DAY_MS, "score": 12.0, "previous": 10.5, "cause": "decay"},
        {
            "event_time": T0 + 2 * DAY_MS + 120_000,
            "score": 12.25,
            "previous": 12.0,
            "cause": "topics",
        },
    ]


def test_a_late_change_counts_on_the_newest_day() -> None:
    h = record_change(None, T0, T0 + 3 * DAY_MS, 20.0, None, "engagement")
    h = record_change(h, T0, T0 + DAY_MS, 21.0, 20.0, "engagement")
    assert (h.day - T0 // DAY_MS, h.closes) == (3, [2100])


def test_only_the_last_90_days_and_20_changes_are_kept() -> None:
    h: ScoreHistory | None = None
    for i in range(200):
        h = record_change(h, T0, T0 + i * DAY_MS, 1.0 + i / 4, 0.75 + i / 4, "engagement")
    assert h is not None
    assert len(h.closes) == HISTORY_DAYS and len(h.changes) == 3 * HISTORY_CHANGES
    body = history_body(h, T0)
    assert body["daily"]["start"] == T0 + (200 - HISTORY_DAYS) * DAY_MS  # type: ignore[index]
    changes = body["changes"]
    assert isinstance(changes, list)
    assert changes[0]["previous"] == 1.0 + 179 / 4  # the 21st-newest change's score
    assert changes[-1]["score"] == 1.0 + 199 / 4


def test_a_long_silence_starts_the_chart_again() -> None:
    h = record_change(None, T0, T0, 50.0, None, "engagement")
    h = record_change(h, T0, T0 + 400 * DAY_MS, 10.0, 50.0, "decay")
    assert len(h.closes) == HISTORY_DAYS and h.closes[-2:] == [5000, 1000]


def test_rows_round_trip_as_packed_differences() -> None:
    h = record_change(None, T0, T0 + 61_000, 33.33, 30.0, "reciprocity")
    h = record_change(h, T0, T0 + DAY_MS + 1_000, 31.0, 33.33, "audience")
    row = history_to_row(h)
    assert row is not None and row[2] == 3000
    assert unpack(row[1]) == [3100 + 233, -233]
    assert unpack(row[3]) == [1, 3333, 1, 24 * 60 - 1, -233, 3]
    assert history_from_row(orjson.loads(orjson.dumps(row))) == h


@pytest.mark.parametrize("n", [0, 1, -1, 15, -16, 16, 511, -512, 512, 10**12, -(10**12)])
def test_packing_is_lossless_and_short(n: int) -> None:
    assert len(set(PACK_ALPHABET)) == 2 * PACK_LAST and not set(PACK_ALPHABET) & set('"\\')
    assert unpack(pack([n, 7, n])) == [n, 7, n]
    zigzag = 2 * n if n >= 0 else -2 * n - 1
    assert len(pack([n])) == max(1, -(-zigzag.bit_length() // 5))  # five bits a character


def test_a_cut_off_or_foreign_packed_row_is_a_state_error() -> None:
    with pytest.raises(StateError):
        history_from_row([1, pack([5])[:0] + "W", None, ""])
    with pytest.raises(StateError):
        history_from_row([1, "5", None, '"'])
    assert history_to_row(None) is None and history_from_row(None) is None


def test_a_layout_3_row_reads_with_no_history(model: Model) -> None:
    engine = Engine(model)
    for raw in generate(GeneratorConfig(users=40, days=3, seed=3)):
        event = parse_event(raw)
        assert isinstance(event, Event)
        engine.process(event)
    state = next(s for s in engine.states.values() if s.history is not None)
    old = state_to_row(state)[:10]
    old[0] = 3
    restored = state_from_row(old)
    assert restored.history is None and restored.published == state.published
    assert decode_state(encode_state(state)).history == history_from_row(
        history_to_row(state.history)
    )


@pytest.fixture(scope="module")
def demo(model: Model) -> Engine:
    """The README demo's scenarios over more than the 90 days a history keeps."""
    engine = Engine(model)
    config = GeneratorConfig(users=150, days=100, seed=1, scenarios=("ring", "party"))
    for raw in generate(config):
        event = parse_event(raw)
        assert isinstance(event, Event)
        engine.process(event)
    return engine


def history_bytes(engine: Engine) -> list[int]:
    """Extra stored bytes of each user with a score: the state with and without history."""
    sizes = []
    for state in engine.states.values():
        if state.received is None:
            continue
        with_history = len(encode_state(state))
        without = len(orjson.dumps(state_to_row(state)[:10]))
        sizes.append(with_history - without)
    return sizes


def test_history_costs_under_400_bytes_a_scored_user(demo: Engine) -> None:
    """A measurement, not a timing: the mean and the worst user of a 100-day stream (228 and
    273 bytes when written; the README demo's 2,000 users over 30 days: 123 and 197)."""
    sizes = history_bytes(demo)
    mean = sum(sizes) / len(sizes)
    print(f"history bytes per scored user: mean {mean:.0f}, max {max(sizes)}, n {len(sizes)}")
    assert mean <= HISTORY_BUDGET_BYTES
    assert max(sizes) <= HISTORY_BUDGET_BYTES


def test_a_user_changing_every_day_stays_under_budget() -> None:
    """The worst case in practice: a change a day for 90 days, the score moving by up to ten
    points a day, 20 changes kept."""
    h: ScoreHistory | None = None
    score = 50.0
    for i in range(120):
        step = ((i * 37) % 2001 - 1000) / 100  # -10.00 .. +10.00
        new = min(100.0, max(1.0, round(score + step, 2)))
        h = record_change(h, T0, T0 + i * DAY_MS + (i * 7919) % DAY_MS, new, score, "engagement")
        score = new
    size = len(orjson.dumps(history_to_row(h)))
    print(f"history bytes, a change a day for 120 days: {size}")
    assert size <= HISTORY_BUDGET_BYTES


def test_both_cores_keep_the_same_history(model: Model) -> None:
    python, native = Engine(model), NativeEngine(model)
    for raw in generate(GeneratorConfig(users=200, days=20, seed=4, scenarios=("ring",))):
        event = parse_event(raw)
        assert isinstance(event, Event)
        assert native.process(event) == python.process(event)
    kept = 0
    for user, state in python.states.items():
        assert native.states[user].history == state.history, user
        kept += state.history is not None
    assert kept > 50
