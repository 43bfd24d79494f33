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
