"""A worker's users on the compiled core: `UserCache`'s interface over `scoring._native`.

The Python steps (`pipeline.steps.actor_step`, `target_step`, `scoring.watch.check_decay`)
stay the specification, and what a worker runs with ``INFLUENCE_CORE=python`` or without the
extension. Here each of them is one call into Rust (`NativeUsers`, native/src/bindings/
worker.rs), which keeps the partition's users decoded between batches as `UserCache` does: the
offset guard, the model's rule and the change detection run there, and Python gets back the
engagement to route and the score changes to publish, as the same records.

Stored rows keep their format: a row is parsed by orjson (`pipeline.steps.stored_parts`, as
`decode_stored` parses it) and converted in Rust; a changed user is written back as the bytes
`encode_stored` writes (`tests/test_native_worker.py` compares every record on every topic of
the in-process driver under both cores). A row the compiled reader refuses is read by Python's
(`scoring.state.state_from_row`), so a damaged row raises the same `StateError` — a dead letter
with the same reason — on both cores.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING

from pipeline.engine import Emitted
from pipeline.steps import (
    ActorOutput,
    DecayCheck,
    Position,
    TargetOutput,
    delete_row,
    stored_parts,
)
from scoring import Engagement, Event, Model, Reason, ScoreChange, TopicScore, UserState
from scoring.errors import StateError
from scoring.quality import AudienceQuality, QualityReason
from scoring.state import state_from_row

if TYPE_CHECKING:
    from scoring import _native

Bound = tuple[int, float, list[tuple[str, float]]]
"""What a leader board ranks a user by (`pipeline.leaders.Leaders.update_bound`): the day of
its last update, its score at that day's start, and each published topic's score there."""

_SEEN = ActorOutput(duplicate=True)
_DUPLICATE_TARGET = TargetOutput(duplicate=True)
_NO_CHANGE = TargetOutput()


class NativeUserCache:
    """One partition's users in the compiled core, over the same key → bytes table."""

    def __init__(
        self, table: MutableMapping[bytes, bytes], model: Model, max_clean: int = 100_000
    ) -> None:
        from scoring import _native

        self.table = table
        self.core: _native.NativeUsers = _native.NativeUsers(
            model,
            table,
            stored_parts,
            state_from_row,
            StateError,
            max_clean,
            (Emitted, ScoreChange, Reason, TopicScore, AudienceQuality, QualityReason, Engagement),
        )

    # the steps

    def actor(self, event: Event, origin: Position, model: Model) -> ActorOutput:
        """`pipeline.steps.actor_step`, in Rust."""
        code, engagement, emitted = self.core.actor(event, origin.key("a"), origin.offset)
        if code == 1:
            return _SEEN
        return ActorOutput(code == 2, code == 3, engagement, [e.change for e in emitted])

    def target(self, engagement: Engagement, origin: Position, model: Model) -> TargetOutput:
        """`pipeline.steps.target_step`, in Rust."""
        duplicate, emitted = self.core.target(engagement, origin.key("t"), origin.offset)
        if duplicate:
            return _DUPLICATE_TARGET
        return TargetOutput(change=emitted[0].change) if emitted else _NO_CHANGE

    def decay(self, user: str, day: int, fall_only: bool, model: Model) -> DecayCheck:
        """`scoring.watch.check_decay` of the user (False: gone), in Rust; marks it changed."""
        emitted = self.core.decay(user, day, fall_only)
        if emitted is False:
            return False
        return emitted[0].change if emitted else None

    # the cache

    def mark(self, user: str) -> None:
        self.core.mark(user)

    def cached(self, user: str) -> UserState | None:
        """A Python copy of the decoded user (full precision), if this cache holds one."""
        row = self.core.state_row(user)
        return state_from_row(row) if row is not None else None

    def is_dirty(self, user: str) -> bool:
        return self.core.is_dirty(user)

    @property
    def changed(self) -> int:
        return self.core.changed()

    def flush_bounds(
        self, store: MutableMapping[bytes, bytes]
    ) -> list[tuple[bytes, bytes, int, Bound | None]]:
        """Writes every changed user to `store`; (key, value, last event time, bound) each."""
        records = self.core.flush()
        for key, value, _, _ in records:
            store[key] = value
        return records

    def forget(self, user: str) -> bool:
        existed = self.core.forget(user)
        return delete_row(self.table, user) or existed

    def clear(self) -> None:
        self.core.clear()
