"""Decay-only score changes: who to re-check when a stream's event time crosses a UTC day.

Scores fall with event time even when nothing happens to a user. Re-reading every user at
every event would cost the whole population per event; instead a stream (the embedded replay,
or one partition of a worker) keeps its event time and the users whose published score is
high enough to fall a point by decay alone, and re-checks just those at each day boundary its
event time crosses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from scoring.mass import read_mass
from scoring.model import DAY_MS, Model
from scoring.score import ScoreChange, detect_change, score_of
from scoring.state import UserState

Check = Callable[[str, int, bool], "ScoreChange | Literal[False] | None"]
"""(user, day, fall_only) → the user's decay change at the start of `day` (recorded in its
state), None if there is none, False if the user is gone. A worker on the compiled core checks
in Rust (`pipeline.native_steps`); `states_check` is the rule, over Python states."""


@dataclass(slots=True)
class DecayWatch:
    """Event time of one stream and the users in it that decay may move by a point."""

    now: int | None = None
    users: dict[str, None] = field(default_factory=dict)
    """Insertion-ordered set: boundaries re-check users in a reproducible order."""

    def note(self, change: ScoreChange, model: Model) -> None:
        """A published change: watch the user while its score can still fall a point."""
        if change.score >= model.decay_check_min_score:
            self.users[change.user] = None
        else:
            self.users.pop(change.user, None)

    def resume(
        self, ts: int, state_of: Callable[[str], UserState | None], model: Model
    ) -> list[tuple[ScoreChange, int]]:
        """Starts a watch rebuilt from stored states (a worker restarted) at event time `ts`.

        A run that crashed after publishing a decay change but before storing the state left
        that state claiming the older score; without a message to redeliver, nothing would
        publish it again. Every watched user is re-checked at the start of `ts`'s day, for a
        fall only (decay never raises a score; a stream rewound to before the stored score was
        published would read a higher one): the lost change comes out again (same day, same
        event id), and a consistent state gives none.
        """
        return self.resume_by(ts, states_check(state_of, model), model)

    def resume_by(self, ts: int, check: Check, model: Model) -> list[tuple[ScoreChange, int]]:
        """`resume` with each user's check made by `check` (a worker's core: `Check`)."""
        self.now = ts
        day = ts // DAY_MS
        out: list[tuple[ScoreChange, int]] = []
        for user in list(self.users):
            change = check(user, day, True)
            if change is False:
                self.users.pop(user, None)
            elif change is not None:
                self.note(change, model)
                out.append((change, day))
        return out

    def forget(self, user: str) -> None:
        self.users.pop(user, None)

    def advance(
        self, ts: int, state_of: Callable[[str], UserState | None], model: Model
    ) -> list[tuple[ScoreChange, int]]:
        """Moves event time to `ts`; (decay change, day) for each boundary crossed, in order.

        Each change is also noted here, and has been recorded in the user's state by
        `detect_change` (the caller persists it). Users `state_of` no longer knows are dropped.
        """
        return self.advance_by(ts, states_check(state_of, model), model)

    def advance_by(self, ts: int, check: Check, model: Model) -> list[tuple[ScoreChange, int]]:
        """`advance` with each user's check made by `check` (a worker's core: `Check`)."""
        now = self.now
        if now is None or ts <= now:
            if now is None:
                self.now = ts
            return []
        self.now = ts
        out: list[tuple[ScoreChange, int]] = []
        for day in range(now // DAY_MS + 1, ts // DAY_MS + 1):
            for user in list(self.users):
                change = check(user, day, False)
                if change is False:
                    self.users.pop(user, None)
                elif change is not None:
                    self.note(change, model)
                    out.append((change, day))
        return out


def check_decay(
    user: str, state: UserState, day: int, fall_only: bool, model: Model
) -> ScoreChange | None:
    """One user's decay re-check at the start of `day`. A user updated after that boundary is
    skipped (a watch rebuilt on a rewound stream: the user is ahead of it). `fall_only` (a
    resumed watch): only a fall by the change threshold, and only for a published score."""
    boundary = day * DAY_MS
    if state.last_ts > boundary:
        return None
    if fall_only:
        if state.published is None:
            return None
        fallen = score_of(read_mass(state, boundary, model), model)
        if fallen > state.published - model.change_threshold:
            return None
    return detect_change(user, state, boundary, model, "decay")


def states_check(state_of: Callable[[str], UserState | None], model: Model) -> Check:
    """`Check` over Python states (`state_of`: None for a user who is gone)."""

    def check(user: str, day: int, fall_only: bool) -> ScoreChange | Literal[False] | None:
        state = state_of(user)
        if state is None:
            return False
        return check_decay(user, state, day, fall_only, model)

    return check
