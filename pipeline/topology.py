"""The worker's processing as plain synchronous code: one topology, two runners.

A worker's handlers run here, over a key → bytes store of users (a Faust table in a worker, a
dict per partition in the in-process driver) and an `Outbox`; nothing here awaits, sends or
reads a clock it was not given. The Faust worker (`pipeline.kafka_app`) and the in-process
driver (`pipeline.driver`) feed it the same batches and send its outbox the same way, so a
test of a redelivery, a rebalance or a failover on the driver runs the production code, as
Kafka Streams' TopologyTestDriver does.

The path of one input: decoded and validated (`decode_input`) → the actor's offset guard and
step (`apply_input`, `pipeline.steps.actor_step`, or its compiled twin in
`pipeline.native_steps` as `Settings.core` says) → its engagement routed to the target's
partition (`route`, sent at the end of the batch) → at the target, in event-time order across
sources (`pipeline.ordering`), the target's guard and step (`apply_engagements`) → change
detection (the steps' `ScoreChange`s) → the partition's decay watch (`watch`, created in
exactly one place, from that partition's own stored users) → score changes, dead letters and,
after the batch's outputs are on the broker, the changelog records of its changed users
(`changelog`).

Input ordering, forwarding and acknowledgement order live in `pipeline.ordering`; the embedded
engine (`pipeline.engine`) is the reference this topology is compared against, not a runner of
it (docs/pipeline.md says why).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import orjson

from pipeline.codec import (
    DeadLetter,
    decode_json_event,
    key_partition,
    refuse_future,
    score_change_json,
)
from pipeline.leaders import Leaders
from pipeline.metrics import PipelineMetrics
from pipeline.native_engine import resolve_core
from pipeline.native_steps import NativeUserCache
from pipeline.outbox import Outbox, Output
from pipeline.settings import Settings
from pipeline.steps import DecayCheck, Position, Routed, UserCache, encode_engagements
from scoring import DecayWatch, Event, Invalid, Model, ScoreChange
from scoring.errors import StateError

log = logging.getLogger(__name__)

Payload = TypeVar("Payload")
Scope = Callable[[Any], AbstractContextManager[None]]

Users = UserCache | NativeUserCache
"""A partition's users on the Python core or the compiled one (`pipeline.native_steps`)."""

SCAN_SLICE = 2000
"""Rows between two yields of the table scan (`scan`): a large table must let a worker's
heartbeats and fetches through."""


def wall_ms() -> int:
    """The wall clock in ms: only for the `ts_in_future` plausibility check."""
    return int(time.time() * 1000)


class Topology:
    """One worker's users, decay watches, leader boards and outbox, and its handlers.

    Events are Faust-shaped (`.message.topic/.partition/.offset/.key/.value`); the driver
    builds its own. `table` is the users store (bytes key → encoded `pipeline.steps.Stored`),
    read through per-partition caches; `changelog` writes each batch's changed users to the
    store its runner gives (Faust's partition store, or the driver's dict).
    """

    def __init__(
        self,
        settings: Settings,
        model: Model,
        table: MutableMapping[bytes, bytes],
        changelog_topic: str,
        metrics: PipelineMetrics | None = None,
        now_ms: Callable[[], int] = wall_ms,
    ) -> None:
        names = settings.topics
        self.settings = settings
        self.model = model
        self.table = table
        self.topics = names
        self.changelog_topic = changelog_topic
        self.metrics = metrics if metrics is not None else PipelineMetrics(model.model_version)
        self.core = resolve_core(settings.core, needs="NativeUsers")
        """The core of the actor and target steps (`Settings.core`): `native` when the
        compiled one is built, unless the settings say python."""
        self.metrics.core = self.core
        self.now_ms = now_ms
        self.partition_count = settings.partitions
        self.exactly_once = settings.processing_guarantee == "exactly_once"
        self.max_ahead_ms = int(settings.max_ahead_s * 1000)
        self.input_index = {name: i for i, name in enumerate((*names.inputs, names.forwarded))}
        self.caches: dict[int, Users] = {}
        """One cache per partition: a batch's changed users are written under an event of
        their own partition, which is where Faust puts a table write."""
        self.clocks: dict[int, DecayWatch] = {}
        """Per partition: its event time and the users decay may move by a point."""
        self.watched: dict[int, dict[str, None]] | None = None
        """Stored users decay may move, by partition: one table scan per assignment feeds
        the watch of each partition when it is first needed."""
        self.leaders = Leaders(settings.partitions, model)
        """Users by score bound, for GET /top and the state gauges (`pipeline.leaders`)."""
        self.routed: dict[tuple[int, int], list[Routed]] = {}
        """Engagements of the running batch by (source partition, target partition)."""
        self.outbox = Outbox()
        self.context: Any = None
        """The event being handled: the transaction its records join (exactly-once)."""
        self.assignment = 0
        """Counts rebalances and seeks (`ordering`): work taken before one is not done after."""

    # state

    def cache(self, partition: int) -> Users:
        cache = self.caches.get(partition)
        if cache is None:
            size = self.settings.cache_max_users
            cache = self.caches[partition] = (
                NativeUserCache(self.table, self.model, size)
                if self.core == "native"
                else UserCache(self.table, size)
            )
        return cache

    def reset(self) -> None:
        """Partitions moved: decoded users, decay watches and boards may belong elsewhere now
        (unflushed changes are dropped: their messages are delivered again)."""
        self.caches.clear()
        self.clocks.clear()
        self.watched = None
        self.leaders.clear()
        self.routed.clear()
        self.outbox.take()

    def scan(self) -> Iterator[None]:
        """The table scan after an assignment, a slice at a time (a runner that must stay
        responsive yields between slices): indexes every stored user in the leader boards and
        keeps, by partition, those whose published score is high enough to fall a point by
        decay alone. Sets `watched` when done; a no-op once it is set."""
        if self.watched is not None:
            return
        floor = self.model.decay_check_min_score
        watched: dict[int, dict[str, None]] = {}
        for scanned, (key, value) in enumerate(list(self.table.items())):
            if scanned % SCAN_SLICE == SCAN_SLICE - 1:
                yield
            try:
                published = self.leaders.scanned(key, value).state.published
            except StateError as exc:  # its events are dead-lettered (`unreadable`)
                log.error("stored user %r cannot be read, left as it is: %s", key[:80], exc)
                continue
            if published is not None and published >= floor:
                partition = key_partition(key, self.partition_count)
                watched.setdefault(partition, {})[key.decode()] = None
        self.watched = watched

    def watch(self, partition: int, ts: int) -> DecayWatch:
        """The partition's decay watch, created here and nowhere else: on the first event of
        the partition after a start or a rebalance, from the stored users of that partition,
        and resumed at that event's time (`DecayWatch.resume`), whether that event is an
        input or an engagement, and whatever it publishes first."""
        watch = self.clocks.get(partition)
        if watch is not None:
            return watch
        if self.watched is None:
            for _ in self.scan():
                pass
        assert self.watched is not None
        watch = self.clocks[partition] = DecayWatch(users=self.watched.pop(partition, {}))
        cache, model = self.cache(partition), self.model

        def check(user: str, day: int, fall_only: bool) -> DecayCheck:
            return cache.decay(user, day, fall_only, model)

        for change, day in watch.resume_by(ts, check, model):
            self.publish(change, f"decay:{day}", partition)
        return watch

    # a batch

    def run(
        self,
        items: Iterable[tuple[Any, Payload]],
        handle: Callable[[Any, Payload], None],
        scope: Scope | None = None,
    ) -> dict[int, Any]:
        """Handles a batch in order; returns each partition's last event. The outbox then
        holds the items' records, then the batch's engagements (`route`). `scope(event)`
        is entered around each item's handler (Faust: the event made current, so that the
        table reads and deletes the store of its partition)."""
        last_of_partition: dict[int, Any] = {}
        for event, payload in items:
            self.context = event
            if scope is None:
                handle(event, payload)
            else:
                with scope(event):
                    handle(event, payload)
            last_of_partition[event.message.partition] = event
        self.context = None
        self._take_engagements(last_of_partition)
        return last_of_partition

    def changelog(
        self, partition: int, store: MutableMapping[bytes, bytes], context: Any = None
    ) -> list[Output]:
        """A partition's changed users written to `store`, as changelog records to send
        (after the batch's outputs are acknowledged: `pipeline.outbox`)."""
        cache = self.caches.get(partition)
        if cache is None or not cache.changed:
            return []
        topic = self.changelog_topic
        return [
            Output(topic, key, value, partition, context)
            for key, value in self.leaders.flush(partition, cache, store)
        ]

    def dirty(self, partition: int) -> bool:
        cache = self.caches.get(partition)
        return cache is not None and bool(cache.changed)

    # handlers

    def decode_input(self, event: Any) -> Event | Invalid:
        message = event.message
        value = message.value
        decoded = (
            Invalid("oversize", "message exceeds the size limit")
            if value is not None and len(value) > self.settings.max_event_bytes
            else decode_json_event(value)
            if value is not None
            else Invalid("not_an_object", "empty message")
        )
        future = refuse_future(decoded, self.now_ms(), self.max_ahead_ms)
        if future is not None:
            return future
        if isinstance(decoded, Invalid):
            return decoded
        key = decoded.actor.encode()
        if message.key is not None and message.key != key:
            # The actor's state lives in the partition of its key: a mis-keyed event would
            # corrupt another partition's state, so it is refused rather than guessed at.
            return Invalid("key_mismatch", "message key must be the actor")
        return decoded  # in another partition than its actor's: forwarded (`pipeline.forward`)

    def apply_input(self, event: Any, decoded: Event, origin: Position) -> None:
        """The actor step of an input applied in partition `event.message.partition`."""
        partition = event.message.partition
        self.watch(partition, decoded.ts)
        try:
            out = self.cache(partition).actor(decoded, origin, self.model)
        except StateError as exc:
            self.unreadable(decoded.actor, exc, event)
            return
        if out.duplicate:
            self.metrics.duplicate("actor")
        else:
            self.metrics.consumed(self.topics.inputs[origin.topic], decoded.kind)
        self.metrics.event_time(decoded.ts, partition)
        if out.engagement is not None:
            self.route((out.engagement, origin), partition)
        for change in out.changes:
            self.publish(change, decoded.id, partition)

    def apply_engagements(self, event: Any, routed: Sequence[Routed] | Invalid) -> None:
        """Target steps for engagements released by a partition's merge, in that order."""
        if isinstance(routed, Invalid):
            self.dead_letter(routed, event)
            return
        partition = event.message.partition
        cache, model = self.cache(partition), self.model

        def check(user: str, day: int, fall_only: bool) -> DecayCheck:
            return cache.decay(user, day, fall_only, model)

        for engagement, origin in routed:
            clock = self.watch(partition, engagement.ts)
            self.metrics.event_time(engagement.ts, partition)
            for change, day in clock.advance_by(engagement.ts, check, model):
                self.publish(change, f"decay:{day}", partition)
            try:
                out = cache.target(engagement, origin, model)
            except StateError as exc:
                self.unreadable(engagement.target, exc, event)
                continue
            if out.duplicate:
                self.metrics.duplicate("target")
            elif out.change is not None:
                self.publish(out.change, engagement.id, partition)

    def apply_control(self, event: Any, _: None = None) -> None:
        """A `forget` request: the user leaves the store, the boards and every watch, and a
        tombstone goes to the score-change topic."""
        message = event.message
        try:
            request = orjson.loads(message.value or b"")
        except orjson.JSONDecodeError as exc:
            self.dead_letter(Invalid("bad_json", str(exc)[:200]), event)
            return
        user = request.get("user") if isinstance(request, dict) else None
        if not isinstance(request, dict) or request.get("kind") != "forget":
            self.dead_letter(Invalid("unknown_kind", "control kind must be forget"), event)
            return
        if not isinstance(user, str) or not user:
            self.dead_letter(Invalid("missing_field", "forget needs a user"), event)
            return
        if message.key is not None and message.key != user.encode():
            self.dead_letter(Invalid("key_mismatch", "message key must be the user"), event)
            return
        self.cache(message.partition).forget(user)
        self.leaders.forget(message.partition, user)
        for clock in self.clocks.values():
            clock.forget(user)
        self.outbox.add(Output(self.topics.score_changes, user.encode(), None, None, event))

    # outputs

    def route(self, routed: Routed, source_partition: int) -> None:
        target = routed[0].target.encode()
        partition = key_partition(target, self.partition_count)
        # Exactly-once: a bundle commits in its source partition's transaction, so it holds
        # one source partition's engagements. At-least-once: one bundle per target partition,
        # in the aligned event-time order the engagements were made.
        source = source_partition if self.exactly_once else -1
        self.routed.setdefault((source, partition), []).append(routed)

    def _take_engagements(self, last_of_partition: dict[int, Any]) -> None:
        """The batch's engagements into the outbox, a few messages per target partition."""
        size = self.settings.engagements_per_message
        any_event = next(reversed(last_of_partition.values()), None)
        topic = self.topics.engagements
        for (source, partition), routed in self.routed.items():
            context = last_of_partition.get(source, any_event)
            for start in range(0, len(routed), size):
                bundle = encode_engagements(routed[start : start + size])
                self.outbox.add(Output(topic, None, bundle, partition, context))
        self.routed.clear()

    def publish(self, change: ScoreChange, cause_id: str, partition: int) -> None:
        self.clocks[partition].note(change, self.model)
        value = score_change_json(change, cause_id, self.model.model_version)
        self.outbox.add(
            Output(self.topics.score_changes, change.user.encode(), value, None, self.context)
        )
        context = self.context
        time_in = getattr(context.message, "time_in", None) if context is not None else None
        self.metrics.score_change(change.cause, time_in)

    def unreadable(self, user: str, exc: StateError, event: Any) -> None:
        """A step met a stored row it cannot read (another layout, a damaged record): the
        message goes to the dead-letter topic and the row stays as it is, for an operator
        to look at; the worker goes on."""
        detail = f"stored state of user {user[:80]!r} cannot be read: {exc}"[:200]
        self.dead_letter(Invalid("bad_state", detail), event, invalid_input=False)

    def dead_letter(self, invalid: Invalid, event: Any, *, invalid_input: bool = True) -> None:
        """`invalid_input`: the message itself is at fault (counted as invalid input when it
        came from an input topic); False when the worker's own state is."""
        message = event.message
        letter = DeadLetter(
            invalid.reason,
            invalid.detail,
            message.value or b"",
            message.topic,
            message.offset,
            message.partition,
        )
        self.outbox.add(Output(self.topics.dead_letter, message.key, letter.to_json(), None, event))
        self.metrics.dead_letter(invalid.reason)
        if invalid_input and message.topic in self.input_index:
            self.metrics.invalid(invalid.reason)
