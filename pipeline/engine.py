"""The embedded engine: the whole model in one process, no broker.

It runs the actor step and then the target step for each event, in stream order, over
in-memory states, and emits score changes: after engagements, and for decay alone when the
stream's event time crosses a UTC day boundary. It is also the in-process test driver
(`process` / `changes` / `state`), like Kafka Streams' TopologyTestDriver.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

from scoring import (
    DecayWatch,
    Event,
    Model,
    ScoreChange,
    UserState,
    actor_change,
    apply_action,
    apply_engagement,
    new_user_state,
    target_change,
)
from scoring.acting import DUPLICATE, ENGAGEMENT, SELF


class Emitted(NamedTuple):
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
        self.watch = DecayWatch()
        """Stream time (the latest event time seen) and the users decay may move a point."""

    @property
    def now(self) -> int | None:
        """Stream time: the latest event time seen."""
        return self.watch.now

    def state(self, user: str, ts: int) -> UserState:
        state = self.states.get(user)
        if state is None:
            state = self.states[user] = new_user_state(ts)
        return state

    def process(self, event: Event) -> list[Emitted]:
        """Applies one event; returns the score changes it caused (decay ones first)."""
        ts = event.ts
        out = self.advance_to(ts)
        model, states, stats = self.model, self.states, self.stats
        actor_state = states.get(event.actor)
        if actor_state is None:
            actor_state = states[event.actor] = new_user_state(ts)
        result = apply_action(actor_state, event, model)
        outcome = result.outcome
        if outcome == DUPLICATE:
            stats.duplicates += 1
            return out
        if outcome == SELF:
            stats.self_engagements += 1
            return out
        stats.events[event.kind] += 1
        engagement = result.engagement
        if outcome == ENGAGEMENT and engagement is not None:
            target = engagement.target
            target_state = states.get(target)
            if target_state is None:
                target_state = states[target] = new_user_state(ts)
            apply_engagement(target_state, engagement, model)
            self._record(target_change(target, target_state, model), event.id, out)
        self._record(actor_change(event.actor, actor_state, result, model), event.id, out)
        return out

    def _record(self, change: ScoreChange | None, cause_id: str, out: list[Emitted]) -> None:
        if change is None:
            return
        out.append(Emitted(change, cause_id))
        self.stats.score_changes += 1
        self.watch.note(change, self.model)

    def advance_to(self, ts: int) -> list[Emitted]:
        """Moves stream time to `ts`, emitting decay-only changes at each day boundary crossed."""
        watch = self.watch
        if watch.now is not None and ts <= watch.now:
            return []
        decayed = watch.advance(ts, self.states.get, self.model)
        self.stats.decay_changes += len(decayed)
        self.stats.score_changes += len(decayed)
        return [Emitted(change, f"decay:{day}") for change, day in decayed]

    def users(self) -> Iterator[tuple[str, UserState]]:
        """All users in id order (for snapshots)."""
        for user in sorted(self.states):
            yield user, self.states[user]


@contextmanager
def long_lived_states() -> Iterator[None]:
    """Keeps CPython's cyclic GC from walking the user states over and over during a replay.

    A replay builds millions of small, long-lived, acyclic objects (about 16 per user), and
    the collector walks every one of them in each generation it passes through, then again
    at each full collection: over a tenth of a Higgs replay. Inside this block whatever
    survives a collection is moved out of the collector's reach (`gc.freeze`): garbage that
    is already garbage at a collection is still collected, a frozen object is still freed
    when its last reference goes, and on exit the frozen objects are handed back, so a cycle
    that died meanwhile is collected later (unless something outside had frozen objects
    before: then they all stay frozen).
    """

    def freeze_survivors(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            gc.freeze()

    frozen_before = gc.get_freeze_count()
    gc.callbacks.append(freeze_survivors)
    try:
        yield
    finally:
        gc.callbacks.remove(freeze_survivors)
        if not frozen_before:
            gc.unfreeze()
