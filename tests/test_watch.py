"""`DecayWatch.resume` (scoring/watch.py): a restarted worker's watch re-publishes the decay
change a crash lost, and nothing else.

The embedded replay never restarts, so the parity and scenario tests never reach `resume`; the
worker calls it once per partition after a rebalance or restart (pipeline/kafka_app.py).
"""

from __future__ import annotations

from dataclasses import replace

from scoring import (
    DecayWatch,
    Model,
    UserState,
    apply_engagement,
    detect_change,
    new_user_state,
    read_mass,
    score_of,
)
from scoring.events import ENGAGEMENT_KIND_INDEX, Engagement
from scoring.model import DAY_MS, HOUR_MS
from tests.conftest import T0

STAR = "star"
ENGAGERS = 40
"""Forty retweets on day 0 give a score of about 46 that decay brings to about 25 by day 5."""


def _star(model: Model) -> UserState:
    """A user with a published score from day 0's engagements."""
    state = new_user_state(T0)
    retweet = ENGAGEMENT_KIND_INDEX["retweet"]
    for i in range(ENGAGERS):
        engagement = Engagement(
            f"e{i}", retweet, T0 + HOUR_MS + i, f"u{i}", STAR, 1.0, 1.0, 1.0, 1.0
        )
        apply_engagement(state, engagement, model)
    change = detect_change(STAR, state, state.last_ts, model, "engagement")
    assert change is not None and change.score > model.decay_check_min_score
    return state


def _watching(*users: str) -> DecayWatch:
    return DecayWatch(users=dict.fromkeys(users))


def test_a_lost_decay_change_is_published_again_at_the_day_boundary(model: Model) -> None:
    state = _star(model)
    published = state.published
    assert published is not None
    ts = T0 + 5 * DAY_MS + 7 * HOUR_MS  # the first event after the restart, on day 5
    boundary = T0 + 5 * DAY_MS
    expected = score_of(read_mass(state, boundary, model), model)
    watch = _watching(STAR)
    out = watch.resume(ts, {STAR: state}.get, model)
    assert watch.now == ts
    [(change, day)] = out
    assert day == boundary // DAY_MS
    assert (change.user, change.event_time, change.cause) == (STAR, boundary, "decay")
    assert (change.score, change.previous) == (expected, published)
    assert state.published == expected  # recorded, so the caller stores it
    assert STAR in watch.users  # still high enough to fall further
    assert watch.resume(ts, {STAR: state}.get, model) == []  # consistent now: nothing more


def test_a_consistent_state_gives_nothing(model: Model) -> None:
    state = _star(model)
    later = T0 + 5 * DAY_MS
    detect_change(STAR, state, later, model, "decay")  # the change was stored before the crash
    watch = _watching(STAR)
    assert watch.resume(later + HOUR_MS, {STAR: state}.get, model) == []
    assert STAR in watch.users


def test_a_fall_is_published_from_the_threshold_on(model: Model) -> None:
    """Half the threshold is not published; exactly the threshold is, as `detect_change` has
    it ("moved by the threshold or more")."""
    boundary = T0 + 5 * DAY_MS
    small, exact = _star(model), _star(model)
    fallen = score_of(read_mass(small, boundary, model), model)
    small.published = fallen + model.change_threshold / 2
    exact.published = fallen + model.change_threshold
    assert exact.published - model.change_threshold == fallen  # exact in binary here
    states = {"small": small, "exact": exact}
    out = _watching("small", "exact").resume(boundary + HOUR_MS, states.get, model)
    assert [(change.user, change.score) for change, _ in out] == [("exact", fallen)]
    assert small.published == fallen + model.change_threshold / 2


def test_a_score_above_the_stored_one_is_no_fall(model: Model) -> None:
    """A stream rewound to before the stored score was published reads a higher score: decay
    never raises one, so resume leaves it to the next engagement."""
    state = _star(model)
    boundary = T0 + 5 * DAY_MS
    fallen = score_of(read_mass(state, boundary, model), model)
    for below in (5 * model.change_threshold, model.change_threshold):
        state.published = fallen - below
        assert _watching(STAR).resume(boundary + HOUR_MS, {STAR: state}.get, model) == []


def test_users_active_today_unpublished_or_gone_are_skipped(model: Model) -> None:
    active = _star(model)
    ts = active.last_ts + HOUR_MS  # same day as the user's own last event: nothing to re-check
    quiet = _star(model)
    quiet.published = None  # never published: no change to lose
    states = {"active": active, "quiet": quiet}
    watch = _watching("gone", "quiet", "active")
    assert watch.resume(ts, states.get, model) == []
    assert list(watch.users) == ["quiet", "active"]  # the unknown user is dropped
    later = T0 + 5 * DAY_MS + HOUR_MS
    lost = _star(model)  # after users that are skipped: still re-checked
    states["lost"] = lost
    watch = _watching("gone", "quiet", "lost")
    assert [change.user for change, _ in watch.resume(later, states.get, model)] == ["lost"]
    assert quiet.published is None


def test_a_change_below_the_watch_floor_ends_the_watch(model: Model) -> None:
    state = _star(model)
    high_floor = replace(model, decay_check_min_score=100.0)
    watch = _watching(STAR)
    [(change, _)] = watch.resume(T0 + 5 * DAY_MS, {STAR: state}.get, high_floor)
    assert change.score < high_floor.decay_check_min_score
    assert STAR not in watch.users


def test_forget_drops_a_user_and_ignores_an_unknown_one() -> None:
    watch = _watching("a", "b")
    watch.forget("a")
    watch.forget("nobody")
    assert list(watch.users) == ["b"]
