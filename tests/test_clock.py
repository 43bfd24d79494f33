"""The grace clock (scoring/clock.py) against hand-counted silences, and folding old silences
into totals (`max_action_runs`) without changing any answer."""

from __future__ import annotations

import pytest

from scoring.clock import GraceClock

GRACE, RENEW = 21, 90
ACTION_DAYS = (0, 5, 40, 45, 200, 230)
"""Silences: 1-4, 6-39, 41-44, 46-199, 201-229, then 231 on."""


def _clock(max_runs: int, days: tuple[int, ...] = ACTION_DAYS) -> GraceClock:
    clock = GraceClock()
    for day in days:
        clock.record_action(day, max_runs, GRACE, RENEW)
    return clock


def _paused_before(clock: GraceClock, day: int) -> int:
    return clock.paused_before(day, clock.pauses(day, GRACE, RENEW))


@pytest.mark.parametrize("max_runs", [1, 2, 3, 16])
def test_paused_days_by_hand_with_and_without_folding(max_runs: int) -> None:
    """Period from day 1: 4 days (1-4) + 17 of 6-39 spend the 21; 41-44 and 46-199 start
    before day 91 and get nothing; 201 opens a new period: 21 of 201-229; 231 on, nothing.
    Folding silences out of the run list (max_runs < 6) must give the same totals."""
    clock = _clock(max_runs)
    assert len(clock.runs) <= 2 * max_runs
    assert _paused_before(clock, 300) == 4 + 17 + 21
    assert _paused_before(clock, 231) == 4 + 17 + 21
    if max_runs >= 3:  # the 201-229 silence still in the runs: a day inside it sees part of it
        assert _paused_before(clock, 210) == 4 + 17 + 9
    if max_runs == 1:
        assert clock.runs == [230, 230]
        assert clock.folded_paused == 42
        assert clock.period_start == 201 and clock.budget == 0


def test_a_late_day_merges_runs_and_is_reported_once() -> None:
    clock = _clock(16, (0, 2))
    assert clock.runs == [0, 0, 2, 2]
    assert clock.record_action(1, 16, GRACE, RENEW)
    assert clock.runs == [0, 2]
    assert not clock.record_action(1, 16, GRACE, RENEW)
    assert not clock.record_action(2, 16, GRACE, RENEW)
    assert clock.record_action(3, 16, GRACE, RENEW) and clock.runs == [0, 3]
    assert clock.record_action(-2, 16, GRACE, RENEW) and clock.runs == [-2, -2, 0, 3]
    assert clock.record_action(-1, 16, GRACE, RENEW) and clock.runs == [-2, 3]


@pytest.mark.parametrize(
    ("days", "query", "paused"),
    [
        # runs 0-1, 5-6, 10-11, 15-16: silences 2-4, 7-9, 12-14, all inside the first 21 days
        ((0, 1, 5, 6, 10, 11, 15, 16), 17, 3 + 3 + 3),
        # 2-4 opens the period (3 days) and 7-91 takes the 18 left; 94 is 92 days after day 2,
        # so 94-119 opens a new period: 21 more
        ((0, 1, 5, 6, 92, 93), 120, 3 + 18 + 21),
    ],
)
def test_folding_keeps_each_silence_its_length_and_the_period_its_start(
    days: tuple[int, ...], query: int, paused: int
) -> None:
    """Silences that do not use up the allowance and a renewal that hangs on the day the period
    began: a folded silence counted a day long or short, or its period dated from the wrong
    day, changes these totals (the first test's 42 does not notice: its budget runs out)."""
    assert _paused_before(_clock(16, days), query) == paused
    for max_runs in range(1, len(days) // 2):
        folded = _clock(max_runs, days)
        assert folded.folded_paused > 0
        assert _paused_before(folded, query) == paused, max_runs


def test_pauses_are_the_first_days_of_each_silence() -> None:
    clock = _clock(16, (0, 1, 5, 6, 10, 11, 15, 16))
    assert clock.pauses(17, GRACE, RENEW) == [(2, 5), (7, 10), (12, 15)]
    assert clock.pauses(14, GRACE, RENEW) == [(2, 5), (7, 10), (12, 14)]  # cut at the query day
    assert clock.pauses(40, GRACE, RENEW)[-1] == (17, 17 + 21 - 9)  # what is left of the 21
    assert clock.paused_before(8, clock.pauses(40, GRACE, RENEW)) == 3 + 1
