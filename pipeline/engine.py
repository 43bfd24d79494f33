"""The embedded engine: the whole model in one process, no broker.

It runs the actor step and then the target step for each event, in stream order, over
in-memory states, and emits score changes: after engagements, and for decay alone when the
stream's event time crosses a UTC day boundary. It is also the in-process test driver
(`process` / `changes` / `state`), like Kafka Streams' TopologyTestDriver.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from scoring import (
    Event,
    Model,
    ScoreChange,
    UserState,
    apply_action,
    apply_engagement,
    detect_change,
    new_user_state,
)
from scoring.acting import DUPLICATE, ENGAGEMENT, SELF
from scoring.model import DAY_MS


@dataclass(frozen=True, slots=True)
class Emitted:
    """A score change with the id of what caused it (an event id, or ``decay:<day>``)."""

    change: ScoreChange
    cause_id: str


@dataclass(slots=True)
class EngineStats:
    events: Counter[str] = field(default_factory=Counter)
    """Events scored, by kind (duplicates and self-engagements excluded)."""
    duplicates: int = 0
    self_engagements: int = 0
    score_changes: int = 0
    decay_changes: int = 0


class Engine:
    """Scores a stream in process; `states` maps user id to its state."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.states: dict[str, UserState] = {}
        self.stats = EngineStats()
        self.now: int | None = None
        """Stream time: the latest event time seen."""
        self._decay_watch: dict[str, None] = {}
        """Users whose published score is high enough to fall a point by decay alone."""

    def state(self, user: str, ts: int) -> UserState:
        state = self.states.get(user)
        if state is None:
            state = self.states[user] = new_user_state(ts)
        return state

    def process(self, event: Event) -> list[Emitted]:
        """Applies one event; returns the score changes it caused (decay ones first)."""
        out = self.advance_to(event.ts)
        actor_state = self.state(event.actor, event.ts)
        result = apply_action(actor_state, event, self.model)
        if result.outcome == DUPLICATE:
            self.stats.duplicates += 1
            return out
        if result.outcome == SELF:
            self.stats.self_engagements += 1
            return out
        self.stats.events[event.kind] += 1
        engagement = result.engagement
        if result.outcome == ENGAGEMENT and engagement is not None:
            target_state = self.state(engagement.target, event.ts)
            apply_engagement(target_state, engagement, self.model)
            self._check(engagement.target, target_state, "engagement", event.id, out)
        cause = result.actor_score_cause
        if cause is not None and actor_state.received is not None:
            self._check(event.actor, actor_state, cause, event.id, out)
        return out

    def _check(
        self, user: str, state: UserState, cause: str, cause_id: str, out: list[Emitted]
    ) -> None:
        change = detect_change(user, state, state.last_ts, self.model, cause)
        if change is not None:
            self._record(change, cause_id, out)

    def _record(self, change: ScoreChange, cause_id: str, out: list[Emitted]) -> None:
        out.append(Emitted(change, cause_id))
        self.stats.score_changes += 1
        if change.score >= self.model.decay_check_min_score:
            self._decay_watch[change.user] = None
        else:
            self._decay_watch.pop(change.user, None)

    def advance_to(self, ts: int) -> list[Emitted]:
        """Moves stream time to `ts`, emitting decay-only changes at each day boundary crossed."""
        out: list[Emitted] = []
        if self.now is None:
            self.now = ts
            return out
        if ts <= self.now:
            return out
        first_day = self.now // DAY_MS + 1
        self.now = ts
        for day in range(first_day, ts // DAY_MS + 1):
            boundary = day * DAY_MS
            for user in list(self._decay_watch):
                state = self.states[user]
                change = detect_change(user, state, boundary, self.model, "decay")
                if change is not None:
                    self.stats.decay_changes += 1
                    self._record(change, f"decay:{day}", out)
        return out

    def users(self) -> Iterator[tuple[str, UserState]]:
        """All users in id order (for snapshots)."""
        for user in sorted(self.states):
            yield user, self.states[user]
