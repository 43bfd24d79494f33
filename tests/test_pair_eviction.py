"""The caps on a user's pairs: past the cap plus a quarter, the heaviest stay.

Engagers (scoring/receiving.py, ``max_in_pairs``): the evicted go into the Bloom filter, so an
evicted engager who comes back is not counted as new again. Engaged users (scoring/acting.py,
``max_out_pairs``): an evicted one is engaged as if for the first time, without the pair
discount.

The bundled model keeps 2,048 engagers and 128 engaged users, more than any hand-built stream
reaches; the rule and parity tests therefore never evict, and these run with caps of 4.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from scoring import Model, UserState, apply_action, apply_engagement, new_user_state
from scoring.clock import NO_DAY
from scoring.events import ENGAGEMENT_KIND_INDEX, Engagement
from scoring.model import DAY_MS, HOUR_MS
from scoring.sketch import might_contain
from tests.conftest import T0, Events

KEEP = 4
"""Evicts at the sixth engager (4 + 4 // 4 = 5 may be held), back down to 4."""
WEIGHTS = {"a": 5.0, "b": 4.0, "c": 3.0, "e": 2.0, "d": 2.0, "f": 1.0}
"""Engager -> mass, in arrival order; "d" and "e" tie for the fourth place, which the id breaks."""


@pytest.fixture
def capped(model: Model) -> Model:
    return replace(model, max_in_pairs=KEEP, max_out_pairs=KEEP)


def _engage(state: UserState, actor: str, weight: float, model: Model, i: int) -> None:
    engagement = Engagement(
        f"e{i}",
        ENGAGEMENT_KIND_INDEX["retweet"],
        T0 + HOUR_MS + i,
        actor,
        "u",
        weight,
        1.0,
        1.0,
        1.0,
    )
    apply_engagement(state, engagement, model)


def _engaged(model: Model) -> UserState:
    state = new_user_state(T0)
    for i, (actor, weight) in enumerate(WEIGHTS.items()):
        _engage(state, actor, weight, model, i)
    return state


def test_the_heaviest_engagers_stay_ties_kept_by_id(capped: Model) -> None:
    state = _engaged(capped)
    received = state.received
    assert received is not None
    assert list(received.in_pairs) == ["a", "b", "c", "d"]  # heaviest first, "d" before "e"
    masses = [pair.mass for pair in received.in_pairs.values()]
    assert masses == sorted(masses, reverse=True) and masses[0] > masses[-1] > 0.0


def test_no_eviction_until_a_quarter_over_the_cap(capped: Model) -> None:
    state = new_user_state(T0)
    for i, actor in enumerate("abcde"):
        _engage(state, actor, 1.0, capped, i)
    assert state.received is not None and len(state.received.in_pairs) == KEEP + KEEP // 4
    assert state.received.evicted == 0


def test_evicted_engagers_are_remembered_and_not_new_when_back(capped: Model) -> None:
    state = _engaged(capped)
    received = state.received
    assert received is not None
    assert might_contain(received.evicted, "e") and might_contain(received.evicted, "f")
    before = received.buckets[-1].new_engagers
    _engage(state, "e", 1.0, capped, 10)
    assert received.in_pairs["e"].first_day == NO_DAY  # first day unknown now
    assert received.buckets[-1].new_engagers == before  # not counted a second time
    assert received.in_pairs["d"].first_day == T0 // DAY_MS  # one that stayed keeps its day


def test_the_totals_keep_what_evicted_engagers_gave(capped: Model, model: Model) -> None:
    """Eviction drops the pair entries, not the mass already summed for the day."""
    capped_state, uncapped_state = _engaged(capped), _engaged(model)
    assert capped_state.received is not None and uncapped_state.received is not None
    assert capped_state.received.buckets[-1].raw == uncapped_state.received.buckets[-1].raw
    assert capped_state.received.pair_total == uncapped_state.received.pair_total


def test_the_most_engaged_users_stay_engaged(capped: Model, ev: Events) -> None:
    """t1..t5 retweeted 5, 4, 3, 2 and 1 times; the sixth target evicts down to the four most
    engaged. Engaging one of them again is discounted as a repeat; engaging t5 is not."""
    state = new_user_state(T0)
    hour = 0.0
    for target, times in (("t1", 5), ("t2", 4), ("t3", 3), ("t4", 2), ("t5", 1), ("t6", 1)):
        for _ in range(times):
            hour += 1.0  # an hour apart: no automation discount
            apply_action(state, ev("retweet", "fan", target, hour=hour), capped)
    assert state.acting is not None
    assert list(state.acting.out_pairs) == ["t1", "t2", "t3", "t4"]
    again = apply_action(state, ev("retweet", "fan", "t4", hour=hour + 1), capped).engagement
    forgotten = apply_action(state, ev("retweet", "fan", "t5", hour=hour + 2), capped).engagement
    assert again is not None and forgotten is not None
    assert again.pair < 1.0
    assert forgotten.pair == 1.0
