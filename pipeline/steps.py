"""The two halves of partitioned processing, as the Kafka agents run them (§12).

`actor_step` runs in the partition of the event's actor, `target_step` in the partition of the
engagement's target; an `Engagement` travels between them on the repartition topic. Both are
synchronous: an agent calls one per message, between its awaits, so the user cache is never
seen half-updated; changed users are written to the table once per batch (`UserCache.flush`).

Each stored user carries, per source partition, the offset of the last message applied to it.
A redelivered message (a crash before the offset commit, a rebalance) is recognised and skipped,
so counters stay exact even under at-least-once delivery; engagements carry the position of the
event that caused them, so a re-sent engagement is recognised by its target too.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import orjson

from pipeline.merge import Progress, Source, decode_progress, encode_progress
from scoring import (
    Engagement,
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
from scoring.acting import DUPLICATE, SELF
from scoring.errors import StateError
from scoring.state import state_from_row, state_to_row
from scoring.watch import check_decay

STORED_LAYOUT = 1


FORWARDED_TOPIC = 3
"""The merge source index of the forward topic (`pipeline.forward`), after the three inputs."""


@dataclass(frozen=True, slots=True)
class Position:
    """Where a message came from: input topic index (or engagement origin), partition, offset.

    `via`: the forward-topic partition an input came through when it was read in another
    partition than its actor's (`pipeline.forward`), -1 if none. The position stays the
    original one, so a copy forwarded twice (a forwarder's crash before its commit) is
    recognised; `via` keeps the guard keys apart, since the copies of one input partition
    reach a user through each forward partition in their own order.
    """

    topic: int
    partition: int
    offset: int
    via: int = -1

    def key(self, side: str) -> str:
        if self.via >= 0:
            return f"{side}{self.topic}:{self.partition}>{self.via}"
        return f"{side}{self.topic}:{self.partition}"

    @property
    def source(self) -> Source:
        """The merge source whose progress covers this engagement (`pipeline.merge`): the
        input partition, or for a forwarded input the forward partition it was applied from."""
        if self.via >= 0:
            return (FORWARDED_TOPIC, self.via)
        return (self.topic, self.partition)


@dataclass(slots=True)
class Stored:
    """A user's state plus the last applied offset per source partition."""

    state: UserState
    positions: dict[str, int] = field(default_factory=dict)

    def seen(self, key: str, offset: int) -> bool:
        return self.positions.get(key, -1) >= offset


def encode_stored(stored: Stored) -> bytes:
    return orjson.dumps([STORED_LAYOUT, stored.positions, state_to_row(stored.state)])


def stored_parts(data: bytes) -> tuple[dict[str, int], Any]:
    """A stored row's positions and state row (both cores read a row through this: orjson
    parses it, then `state_from_row` or the compiled core's reader converts the state)."""
    try:
        layout, positions, row = orjson.loads(data)
    except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
        raise StateError(f"stored user is not a [layout, positions, state] array: {exc}") from exc
    if layout != STORED_LAYOUT:
        raise StateError(f"unknown stored-user layout {layout!r}")
    if not isinstance(positions, dict):
        raise StateError("stored user's positions are not an object")
    return positions, row


def decode_stored(data: bytes) -> Stored:
    positions, row = stored_parts(data)
    return Stored(state_from_row(row), positions)


DecayCheck = ScoreChange | Literal[False] | None
"""A decay re-check's answer (`scoring.watch.Check`): the change, none, or False (gone)."""

Routed = tuple[Engagement, Position]
"""An engagement on its way to its target, with the position of the event that caused it."""


class Bundle(NamedTuple):
    """One repartition message: engagements bound for one partition, and how far each of the
    sender's input partitions has sent its engagements (`pipeline.merge`)."""

    engagements: list[Routed]
    progress: list[tuple[Source, Progress]]


def encode_engagements(
    routed: list[Routed], progress: Sequence[tuple[Source, Progress]] = ()
) -> bytes:
    """A bundle: one Kafka message for many engagements, with the sender's progress."""
    return orjson.dumps(
        {
            "engagements": [
                [
                    *engagement,
                    origin.topic,
                    origin.partition if origin.via < 0 else [origin.partition, origin.via],
                    origin.offset,
                ]
                for engagement, origin in routed
            ],
            "progress": encode_progress(progress),
        }
    )


def decode_engagements(data: bytes) -> Bundle:
    """A bundle (a bare list of rows, as workers before `pipeline.merge` sent, has no progress)."""
    try:
        doc = orjson.loads(data)
        rows, announced = (
            (doc, []) if isinstance(doc, list) else (doc["engagements"], doc["progress"])
        )
        out: list[Routed] = []
        for *values, topic, partition, offset in rows:
            values[-1] = tuple(values[-1])  # ref_hashtags
            via = -1
            if isinstance(partition, list):  # a forwarded input's: [partition, via]
                partition, via = partition
            out.append((Engagement(*values), Position(topic, partition, offset, via)))
        progress = decode_progress(announced)
    except (orjson.JSONDecodeError, ValueError, TypeError, KeyError) as exc:
        raise StateError(f"engagement bundle is not a list of engagement rows: {exc}") from exc
    return Bundle(out, progress)


def delete_row(table: MutableMapping[bytes, bytes], user: str) -> bool:
    """Deletes the user's stored row, for either core's `forget`; True if there was one."""
    key = user.encode()
    if key not in table:
        return False
    del table[key]
    return True


class UserCache:
    """Decoded users over a key-value table of encoded ones (a Faust table in workers).

    Steps change decoded users in place and mark them dirty; `flush` writes each dirty user to
    the table once. A worker flushes at the end of a batch, after the batch's outputs are
    acknowledged by the broker, so a user's changelog record never gets ahead of the
    engagements and score events it implies, and a user touched a hundred times in a batch
    costs one encode and one changelog message, not a hundred.
    """

    def __init__(self, table: MutableMapping[bytes, bytes], max_clean: int = 100_000) -> None:
        self.table = table
        self.users: dict[str, Stored] = {}
        self.dirty: dict[str, None] = {}
        """Users changed since the last flush, in the order first changed (an ordered set):
        the changelog records of a batch come out in the same order on every run and core."""
        self.max_clean = max_clean

    def get(self, user: str, ts: int) -> Stored:
        stored = self.users.get(user)
        if stored is None:
            data = self.table.get(user.encode())
            stored = decode_stored(data) if data is not None else Stored(new_user_state(ts))
            self.users[user] = stored
        return stored

    def peek(self, user: str) -> Stored | None:
        stored = self.users.get(user)
        if stored is None:
            data = self.table.get(user.encode())
            if data is None:
                return None
            stored = self.users[user] = decode_stored(data)
        return stored

    def state_of(self, user: str) -> UserState | None:
        stored = self.peek(user)
        return stored.state if stored is not None else None

    def mark(self, user: str) -> None:
        self.dirty[user] = None

    def cached(self, user: str) -> UserState | None:
        """The decoded copy of the user, if this cache holds one (maybe not flushed yet)."""
        stored = self.users.get(user)
        return stored.state if stored is not None else None

    def is_dirty(self, user: str) -> bool:
        return user in self.dirty

    @property
    def changed(self) -> int:
        """Users changed since the last flush."""
        return len(self.dirty)

    # the steps, as a worker's topology calls them on either core (`pipeline.native_steps`)

    def actor(self, event: Event, origin: Position, model: Model) -> ActorOutput:
        return actor_step(self, event, origin, model)

    def target(self, engagement: Engagement, origin: Position, model: Model) -> TargetOutput:
        return target_step(self, engagement, origin, model)

    def decay(self, user: str, day: int, fall_only: bool, model: Model) -> DecayCheck:
        """The decay watch's check of `user` (`scoring.watch.Check`), marking it changed."""
        state = self.state_of(user)
        if state is None:
            return False
        change = check_decay(user, state, day, fall_only, model)
        if change is not None:
            self.mark(user)
        return change

    def flush(self, store: MutableMapping[bytes, bytes] | None = None) -> list[tuple[bytes, bytes]]:
        """Writes every dirty user to `store` (by default the table) and returns the records
        written (a worker writes a Faust table's store and sends the changelog records
        itself, in bulk)."""
        target, users = self.table if store is None else store, self.users
        records = []
        for user in self.dirty:
            record = (user.encode(), encode_stored(users[user]))
            target[record[0]] = record[1]
            records.append(record)
        self.dirty.clear()
        if len(users) > self.max_clean:
            users.clear()  # all clean now: decoding again is cheaper than unbounded memory
        return records

    def forget(self, user: str) -> bool:
        """Removes the user everywhere in this store; True if there was anything to remove."""
        self.dirty.pop(user, None)
        existed = self.users.pop(user, None) is not None
        return delete_row(self.table, user) or existed

    def clear(self) -> None:
        """Partitions moved: unflushed changes are dropped, their messages will be redelivered."""
        self.users.clear()
        self.dirty.clear()


@dataclass(slots=True)
class ActorOutput:
    duplicate: bool = False
    self_engagement: bool = False
    engagement: Engagement | None = None
    changes: list[ScoreChange] = field(default_factory=list)


def actor_step(cache: UserCache, event: Event, origin: Position, model: Model) -> ActorOutput:
    """Applies an input event where its actor's state lives (marks the actor dirty).

    The caller sends the engagement before the cache is flushed: if a crash lets only one of
    the two through, it is the engagement (a redelivery then recomputes it, and the target
    recognises the copy), never a state that says "done" for an engagement that was lost.
    """
    stored = cache.get(event.actor, event.ts)
    key = origin.key("a")
    if stored.seen(key, origin.offset):
        return ActorOutput(duplicate=True)
    result = apply_action(stored.state, event, model)
    stored.positions[key] = origin.offset
    cache.mark(event.actor)
    out = ActorOutput(
        duplicate=result.outcome == DUPLICATE,
        self_engagement=result.outcome == SELF,
        engagement=result.engagement,
    )
    change = actor_change(event.actor, stored.state, result, model)
    if change is not None:
        out.changes.append(change)
    return out


@dataclass(frozen=True, slots=True)
class TargetOutput:
    duplicate: bool = False
    change: ScoreChange | None = None


def target_step(
    cache: UserCache, engagement: Engagement, origin: Position, model: Model
) -> TargetOutput:
    """Applies an engagement where its target's state lives (marks the target dirty)."""
    stored = cache.get(engagement.target, engagement.ts)
    key = origin.key("t")
    if stored.seen(key, origin.offset):
        return TargetOutput(duplicate=True)
    apply_engagement(stored.state, engagement, model)
    stored.positions[key] = origin.offset
    change = target_change(engagement.target, stored.state, model)
    cache.mark(engagement.target)
    return TargetOutput(change=change)
