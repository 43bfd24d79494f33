"""The Faust application: topics, the users table and the three agents.

- `act` reads the input topics (keyed by actor) and runs the actor step;
- `receive` reads the repartition topic (keyed by target) and runs the target step;
- `control` reads `forget` requests (keyed by user).

All topics have the same partition count and the default (murmur2) key partitioner, so
partition p of every topic, and of the users table's changelog, lives on the same worker: a
user's whole state is local to one partition.

Agents take batches (`stream.take_events`). A batch runs under one lock per worker: every
event's step and sends, then one producer flush, then each changed user written to the table
once. Per-event changelog writes were what held an untuned Faust app to a few hundred events
per second; and since a user's record is written only after the outputs it implies are
acknowledged, a crash can lose a state write (the events are redelivered and re-applied) but
never an engagement or a score event that the state claims was sent.
Faust and aiokafka are used only here and in `pipeline/worker.py`; every private Faust name
the pipeline depends on is reached through `pipeline.faust_compat` (and `pipeline.consumer`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import nullcontext
from typing import Any, TypeVar, cast

import faust
import orjson
from faust.exceptions import NotReady
from faust.streams import Stream
from faust.types import TP, EventT

from pipeline.aligner import EventTimeAligner
from pipeline.api import register as register_views
from pipeline.codec import (
    DeadLetter,
    decode_json_event,
    key_partition,
    refuse_future,
    score_change_json,
)
from pipeline.consumer import AtLeastOnceConsumer
from pipeline.end_offsets import EndOffsetReader
from pipeline.faust_compat import (
    as_current,
    consumer_generation,
    current_event,
    generation_of,
    install_transport,
    persist_changelog_offset,
    read_offset,
    send_record,
    store_of,
)
from pipeline.forward import FORWARDED, Arrived, Forwarded, Forwarding, InputPayload
from pipeline.leaders import Leaders
from pipeline.merge import Progress, Source, SourceMerge, all_sources
from pipeline.metrics import PipelineMetrics
from pipeline.reprocess import install_start_seek
from pipeline.settings import Settings
from pipeline.steps import (
    Position,
    Routed,
    UserCache,
    actor_step,
    decode_engagements,
    encode_engagements,
    target_step,
)
from scoring import DecayWatch, Event, Invalid, Model, ScoreChange
from scoring.errors import StateError

log = logging.getLogger(__name__)

Payload = TypeVar("Payload")


class Pipeline:
    """Topics, table and message handlers of one worker."""

    def __init__(self, app: faust.App, settings: Settings, model: Model) -> None:
        self.app = app
        self.settings = settings
        self.model = model
        names = settings.topics
        count = settings.partitions

        def topic(*topic_names: str) -> faust.TopicT:
            return app.topic(
                *topic_names, key_serializer="raw", value_serializer="raw", partitions=count
            )

        self.inputs = topic(*names.inputs, names.forwarded)  # `pipeline.forward`
        self.forwarded = topic(names.forwarded)
        self.control = topic(names.control)
        self.engagements = topic(names.engagements)
        self.score_changes = topic(names.score_changes)
        self.dead_letters = topic(names.dead_letter)
        # bytes keys and values: Faust's table serializer is JSON unless told otherwise, and
        # JSON turned numeric user ids ("50329") into ints on recovery, so a restarted worker
        # missed those users, and RocksDB handed back decoded lists instead of our bytes.
        self.table = app.Table(
            "users", default=None, partitions=count, key_type=bytes, value_type=bytes
        )
        self.input_index = {name: i for i, name in enumerate((*names.inputs, names.forwarded))}
        self.partition_count = count
        self.caches: dict[int, UserCache] = {}
        """One cache per partition: a batch's changed users are written under an event of
        their own partition, which is where Faust puts a table write."""
        self.clocks: dict[int, DecayWatch] = {}
        """Per partition: its event time and the users decay may move by a point."""
        self.watched: dict[int, dict[str, None]] | None = None
        """Stored users decay may move, by partition: one table scan per assignment feeds
        the watch of each partition when it is first needed."""
        self.leaders = Leaders(count, model)
        """Users by score bound, for GET /top and the state gauges (`pipeline.leaders`)."""
        self.outbox: dict[tuple[int, int], list[Routed]] = {}
        """Engagements of the running batch by (source partition, target partition)."""
        self.sources = all_sources(len(names.inputs) + 1, count)  # + forwarded, `Position.source`
        self.merges: dict[int, SourceMerge[tuple[Routed, list[Any]]]] = {}
        """Per target partition: engagements held until every source has passed their time."""
        self.pending_acks: dict[int, deque[list[Any]]] = {}
        """Per repartition partition, its messages not acknowledged yet, in offset order, each
        as [event, engagements still held]."""
        self.bundle_context: dict[int, EventT[Any]] = {}
        """Per target partition: its latest repartition message (the event a release runs as)."""
        self.released_ts: dict[TP, int] = {}
        self.input_context: dict[int, EventT[Any]] = {}
        """Per input partition number: its latest released event (under exactly-once, the
        transaction its progress announcements join)."""
        """Per owned input partition: the latest event time released to the actor step."""
        self.progress_sent: dict[Source, Progress] = {}
        self.lock = asyncio.Lock()
        self.assignment = 0
        """Counts rebalances (`reset`): work taken before one is not done after it."""
        self.forwarding = Forwarding(
            names.forwarded,
            names.inputs,
            count,
            self.has_more,
            next_offset=self.next_offset,
            exactly_once=settings.processing_guarantee == "exactly_once",
            max_wait_s=settings.merge_max_wait_s,
        )
        """Inputs read outside their actor's partition, sent on there (`pipeline.forward`)."""
        self.end_offsets = EndOffsetReader(
            settings.kafka_client_options(), settings.end_offsets_timeout_s
        )
        """Confirms forwarders' idle claims (`confirm_idle_forwarders`)."""
        self.aligner: EventTimeAligner[tuple[EventT[Any], InputPayload]] = EventTimeAligner(
            self.has_more,
            settings.align_max_wait_s,
            watermark=self.forwarding.watermark,
            watermark_max_wait_s=settings.merge_max_wait_s,
        )
        self.input_stream: Stream[bytes] | None = None
        self.engagement_stream: Stream[bytes] | None = None
        self.metrics = PipelineMetrics(model.model_version)
        self.max_ahead_ms = int(settings.max_ahead_s * 1000)

    def cache(self, partition: int) -> UserCache:
        cache = self.caches.get(partition)
        if cache is None:
            cache = self.caches[partition] = UserCache(self.table, self.settings.cache_max_users)
        return cache

    def reset(self) -> None:
        """Partitions moved: decoded users, stream clocks and held inputs may belong elsewhere
        now (held inputs were never acknowledged: they will be delivered again)."""
        self.drop_holds()
        self.forwarding.reset()
        self.aligner.forget()
        self.merges.clear()
        self.caches.clear()
        self.clocks.clear()
        self.watched = None
        self.leaders.clear()
        self.released_ts.clear()
        self.input_context.clear()
        self.progress_sent.clear()

    def drop_holds(self) -> None:
        """Lets go of every message delivered and not yet applied: after a rebalance or a seek
        the consumer delivers them again, from the committed offset. Kept, they would be
        applied ahead of their redelivered predecessors, which the offset guards would then
        take for seen and skip. Work released but not yet run is dropped too (`assignment`).
        What the sources announced is kept; after a rebalance (`reset`) every worker
        announces anew."""
        self.assignment += 1
        self.aligner.drop()
        self.forwarding.drop()
        for merge in self.merges.values():
            merge.drop_held()
        self.pending_acks.clear()
        self.bundle_context.clear()

    def current(self, events: Sequence[EventT[Any]]) -> list[EventT[Any]]:
        """The events delivered since the latest rebalance and seek: a batch an agent collected
        before one may reach it after (Faust's streams skip an old generation's messages one
        by one; a batch is past that check), and its messages come again, in order."""
        generation = consumer_generation(self.app)
        consumer = cast(AtLeastOnceConsumer, self.app.consumer)
        return [
            event
            for event in events
            if generation_of(event.message) == generation and not consumer.stale(event.message)
        ]

    def track_inputs(self, assigned: Iterable[TP]) -> None:
        inputs = sorted(tp for tp in assigned if tp.topic in self.input_index)
        self.aligner.track(list(inputs))

    def has_more(self, tp: Any, last_offset: int) -> bool:
        """Does the broker hold input beyond what reached the aligner? (Its timing, and whether
        a partition is idle for the progress it announces.) A partition the consumer does not
        hold at the moment (between the phases of a rebalance) may have more."""
        consumer = self.app.consumer
        if tp not in consumer.assignment():
            return True
        highwater = consumer.highwater(tp)
        if highwater is None:
            return last_offset < 0
        return bool(highwater > self.next_offset(tp, last_offset))

    def next_offset(self, tp: Any, last_offset: int) -> int:
        """The next offset this worker reads in `tp`, past `last_offset` (the last one that
        reached the aligner). Faust's read offset is the next offset to read after a seek,
        the last one read after that."""
        return max(last_offset + 1, read_offset(self.app.consumer, tp) or 0)

    async def confirm_idle_forwarders(self) -> None:
        """Reads the end offsets of the input partitions whose forwarders claim to be idle
        (`merge.Progress.end`), so that a claim made before a producer appended to them does
        not let this worker's own later inputs go ahead of what they will forward. One
        ListOffsets request; a failed one confirms nothing, and the claims keep holding."""
        forwarding = self.forwarding
        claims = forwarding.idle_claims()
        if not claims:
            return
        epoch, names = forwarding.epoch, self.settings.topics.inputs
        try:
            ends = await self.end_offsets.read((names[t], p) for t, p in claims)
        except Exception as exc:  # the check is best-effort: unconfirmed claims just hold
            log.info("could not read the forwarders' end offsets: %r", exc)
            return
        index = self.input_index
        confirmed = {(index[topic], partition): end for (topic, partition), end in ends.items()}
        forwarding.confirm(confirmed, epoch)

    async def run_inputs(self, events: Sequence[EventT[Any]]) -> None:
        """Input events in event-time order across partitions (`pipeline.aligner`), then acked.

        Valid events wait in the aligner until every partition behind them has caught up,
        unacknowledged, so a crash or a rebalance redelivers them; a refused one goes to the
        dead-letter topic at once unless events of its partition are held (then after them).
        A backlog is released a slice at a time, the event loop free between slices. After
        each slice the worker announces how far each of its input partitions has sent its
        engagements (`pipeline.merge`).
        """
        ready: list[tuple[EventT[Any], InputPayload]] = []
        aligner, forwarding = self.aligner, self.forwarding
        if events:
            forwarding.arrived()
        for event in self.current(events):
            message = event.message
            if message.topic == forwarding.topic:
                refused = forwarding.receive(event)
                if refused is not None:
                    ready.append((event, refused))
                continue
            decoded: InputPayload = self.decode_input(event)
            if isinstance(decoded, Event) and forwarding.route_input(event, decoded):
                decoded = FORWARDED  # sent on in this round; acknowledged in its turn
            if isinstance(decoded, Event):
                aligner.add(message.tp, message.offset, decoded.ts, (event, decoded))
            elif not aligner.follow(message.tp, message.offset, (event, decoded)):
                ready.append((event, decoded))
        await self.confirm_idle_forwarders()
        for partition, offset, ts, item in forwarding.release():
            aligner.add(TP(forwarding.topic, partition), offset, ts, item)
        stream = self.input_stream
        assert stream is not None
        limit = self.settings.batch_max_events
        assignment = self.assignment
        while True:
            ready.extend(aligner.release(limit))
            if not ready and not self.progress_due() and not forwarding.due(aligner.queues):
                for event in forwarding.ackable():
                    await stream.ack(event)
                return
            done = await self.run_batch(
                ready, self.on_input, finish=self.finish_inputs, assignment=assignment
            )
            if not done:
                return
            for event in forwarding.settle(ready):
                await stream.ack(event)
            if len(ready) < limit:
                return
            ready = []
            await asyncio.sleep(0)

    def input_progress(self) -> dict[Source, Progress]:
        """Each owned input partition: how far in event time it has sent its engagements, and
        whether it is idle. A partition whose next event waits in the aligner has passed
        everything before that event, however long ago it released one: announcing only its
        last release left a sparse partition (a `mentions` partition whose next event was
        hours ahead) "silent" while the others caught up, until every target stopped waiting
        for it after `merge_max_wait_s` and applied engagements out of order."""
        aligner = self.aligner
        progress: dict[Source, Progress] = {}
        for tp, queue in cast(Iterable[tuple[TP, Any]], aligner.queues.items()):
            released, head = self.released_ts.get(tp), aligner.head_time(tp)
            passed = released if head is None else max(head - 1, released or head - 1)
            progress[(self.input_index[tp.topic], tp.partition)] = self.forwarding.progress_of(
                tp, Progress(passed, aligner.idle(tp)), bool(queue.items)
            )
        return progress

    def progress_due(self) -> bool:
        if self.settings.processing_guarantee == "exactly_once":
            return False
        return self.input_progress() != self.progress_sent

    async def finish_inputs(self, last_of_partition: dict[int, EventT[Any]]) -> None:
        """After an input batch's engagements: its forwards and the forwarders' progress
        (`pipeline.forward`), then the engagements' progress."""
        size = self.settings.engagements_per_message
        for context, partition, message in self.forwarding.take(self.aligner.queues, size):
            with as_current(context) if context is not None else nullcontext():
                await self.send(self.forwarded, None, message, partition)
        await self.send_progress(last_of_partition)

    async def send_progress(self, last_of_partition: dict[int, EventT[Any]]) -> None:
        """Tells every target partition how far this worker's input partitions have sent their
        engagements, whenever that changed. After an assignment every worker announces anew
        (`reset`), after the group's new generation began, so a target partition's new owner
        reads it however quiet a source is; an idle pipeline sends nothing. Sent after the
        batch's engagements, through the same producer: a target never sees a source's
        progress before the engagements it covers."""
        if not self.progress_due():
            return
        progress = self.input_progress()
        exactly_once = self.settings.processing_guarantee == "exactly_once"
        groups: dict[int, list[tuple[Source, Progress]]] = {}
        for source, known in progress.items():
            groups.setdefault(source[1] if exactly_once else -1, []).append((source, known))
        sent: dict[Source, Progress] = {}
        for group, rows in groups.items():
            # Exactly-once: a partition's progress joins the transaction of its latest input,
            # as its engagements do; before its first input it waits (a send outside any
            # event's transaction made Faust start a second producer for a transactional id,
            # and the first was fenced: a worker crashed with ProducerFenced).
            context = self.input_context.get(group) if exactly_once else None
            if exactly_once and context is None:
                continue
            message = encode_engagements([], rows)
            with as_current(context) if context is not None else nullcontext():
                for partition in range(self.partition_count):
                    await self.send(self.engagements, None, message, partition)
            sent.update(rows)
        self.progress_sent = sent

    async def unless_stopping(self, work: Callable[[], Awaitable[None]]) -> None:
        """A timer's work, unless the worker is stopping. A timer that fired as a graceful
        stop began reached the producer after Faust had stopped it (`NotReady`), and Faust
        logged the app as crashed; the batch was not acknowledged, so whoever owns its
        partitions next is delivered it again: handing it off is all there is left to do."""
        if self.app.should_stop:
            return
        try:
            await work()
        except NotReady:
            if not self.app.should_stop:
                raise
            log.info("stopping: a timer's batch is left unacknowledged for the next owner")

    async def run_batch(
        self,
        items: Sequence[tuple[EventT[Any], Payload]],
        handle: Callable[[EventT[Any], Payload], Awaitable[None]],
        finish: Callable[[dict[int, EventT[Any]]], Awaitable[None]] | None = None,
        assignment: int | None = None,
    ) -> bool:
        """Handles a batch, then makes its outputs durable, then writes its changed users.
        `finish` sends what must follow the batch's engagements (progress announcements).

        False, and nothing done, when the partitions moved since `assignment`: the items were
        taken from an aligner or a merge that a rebalance has since emptied, and the next
        owner is redelivered them."""
        async with self.lock:
            if assignment is not None and assignment != self.assignment:
                return False
            last_of_partition: dict[int, EventT[Any]] = {}
            for event, payload in items:
                with as_current(event):
                    await handle(event, payload)
                last_of_partition[event.message.partition] = event
            await self.send_engagements(last_of_partition)
            if finish is not None:
                await finish(last_of_partition)
            await self.app.producer.flush()
            self.metrics.produced()
            last_sent: dict[int, Awaitable[Any]] = {}
            for partition, event in last_of_partition.items():
                cache = self.caches.get(partition)
                if cache is not None and cache.dirty:
                    with as_current(event):
                        last_sent[partition] = await self.write_users(cache, partition)
            # The changelog records too, before the batch is acknowledged: a rebalance right
            # after it recovers the table from the changelog, and a record still in the
            # producer's buffer then would leave an older one in the table.
            await self.app.producer.flush()
            for sent in last_sent.values():
                persist_changelog_offset(self.app, self.table, await sent)
        return True

    async def write_users(self, cache: UserCache, partition: int) -> Awaitable[Any]:
        """A partition's changed users into the table's store, and their changelog records
        straight to the producer: what `table[key] = value` does, without a coroutine hop per
        record through Faust's send buffer (a third of a worker's time on the Higgs burst,
        "producer buffer full" in its log). Returns the last record's delivery future."""
        sent: Awaitable[Any] | None = None
        for key, value in self.leaders.flush(partition, cache, store_of(self.table)):
            sent = await self.send(self.table.changelog_topic, key, value, partition)
        assert sent is not None
        return sent

    async def send(
        self,
        topic: faust.TopicT,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
    ) -> Awaitable[Any]:
        """Enqueues one record; returns its delivery future (`run_batch` flushes the producer).

        Under exactly-once the record joins the current event's source-partition transaction.
        """
        return await send_record(self.app, topic.get_topic_name(), key, value, partition)

    def route(self, routed: Routed, source_partition: int) -> None:
        target = routed[0].target.encode()
        partition = key_partition(target, self.partition_count)
        # Exactly-once: a bundle commits in its source partition's transaction, so it holds
        # one source partition's engagements. At-least-once: one bundle per target partition,
        # in the aligned event-time order the engagements were made.
        source = source_partition if self.settings.processing_guarantee == "exactly_once" else -1
        self.outbox.setdefault((source, partition), []).append(routed)

    async def send_engagements(self, last_of_partition: dict[int, EventT[Any]]) -> None:
        """Sends the batch's engagements, a few messages per target partition."""
        size = self.settings.engagements_per_message
        any_event = next(reversed(last_of_partition.values()), None)
        for (source, partition), routed in self.outbox.items():
            context = last_of_partition.get(source, any_event)
            assert context is not None
            with as_current(context):
                for start in range(0, len(routed), size):
                    bundle = encode_engagements(routed[start : start + size])
                    await self.send(self.engagements, None, bundle, partition)
        self.outbox.clear()

    async def publish(self, change: ScoreChange, cause_id: str, partition: int) -> None:
        self.clocks[partition].note(change, self.model)
        await self.send(
            self.score_changes,
            change.user.encode(),
            score_change_json(change, cause_id, self.model.model_version),
        )
        event = current_event()
        self.metrics.score_change(change.cause, event.message.time_in if event else None)

    async def dead_letter(self, invalid: Invalid, event: EventT[Any]) -> None:
        message = event.message
        letter = DeadLetter(
            invalid.reason,
            invalid.detail,
            message.value or b"",
            message.topic,
            message.offset,
            message.partition,
        )
        await self.dead_letters.send(key=message.key, value=letter.to_json())
        self.metrics.dead_letter(invalid.reason)
        if message.topic in self.input_index:
            self.metrics.invalid(invalid.reason)

    def decode_input(self, event: EventT[Any]) -> Event | Invalid:
        message = event.message
        value = message.value
        decoded = (
            Invalid("oversize", "message exceeds the size limit")
            if value is not None and len(value) > self.settings.max_event_bytes
            else decode_json_event(value)
            if value is not None
            else Invalid("not_an_object", "empty message")
        )
        future = refuse_future(decoded, int(time.time() * 1000), self.max_ahead_ms)
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

    async def on_input(self, event: EventT[Any], decoded: InputPayload) -> None:
        if isinstance(decoded, Invalid):
            await self.dead_letter(decoded, event)
            return
        if isinstance(decoded, Forwarded):
            return  # sent on to its actor's partition when it was read
        message = event.message
        partition = message.partition
        tp = message.tp
        origin = Position(self.input_index[message.topic], partition, message.offset)
        if isinstance(decoded, Arrived):  # forwarded: guarded on its original position
            origin = decoded.origin
            decoded = decoded.event
        if decoded.ts > self.released_ts.get(tp, decoded.ts - 1):
            self.released_ts[tp] = decoded.ts
        self.input_context[partition] = event
        await self.watch(partition, decoded.ts)
        out = actor_step(self.cache(partition), decoded, origin, self.model)
        if out.duplicate:
            self.metrics.duplicate("actor")
        else:
            self.metrics.consumed(self.settings.topics.inputs[origin.topic], decoded.kind)
        self.metrics.event_time(decoded.ts, message.partition)
        if out.engagement is not None:
            self.route((out.engagement, origin), message.partition)
        for change in out.changes:
            await self.publish(change, decoded.id, message.partition)

    def merge(self, partition: int) -> SourceMerge[tuple[Routed, list[Any]]]:
        merge = self.merges.get(partition)
        if merge is None:
            # Exactly-once does not merge yet (engagements in arrival order, as before): its
            # progress announcements still broke a worker's transactions (docs/pipeline.md).
            exactly_once = self.settings.processing_guarantee == "exactly_once"
            merge = self.merges[partition] = SourceMerge(
                frozenset() if exactly_once else self.sources,
                max_wait_s=self.settings.merge_max_wait_s,
            )
        return merge

    async def run_engagements(self, events: Sequence[EventT[Any]]) -> None:
        """Repartition messages: engagements held per target partition until every source
        has passed their event time (`pipeline.merge`), then applied a slice at a time.

        Messages are acknowledged in offset order, each once all its engagements are applied
        and stored: Faust commits past a one-offset hole at the head of a partition (it takes
        it for a transaction marker), so a message acknowledged while an earlier one is held
        would let the commit skip the held one, and a restart lose it.
        """
        assignment = self.assignment
        invalid: list[tuple[EventT[Any], list[Routed] | Invalid]] = []
        dead: list[list[Any]] = []
        for event in self.current(events):
            message = event.message
            pending = self.pending_acks.setdefault(message.partition, deque())
            try:
                bundle = decode_engagements(message.value or b"")
            except StateError as exc:
                invalid.append((event, Invalid("bad_engagement", str(exc)[:200])))
                dead.append([event, 1])
                pending.append(dead[-1])
                continue
            merge = self.merge(message.partition)
            for source, (announced, idle, end) in bundle.progress:
                merge.announce(source, announced, idle, end)
            entry: list[Any] = [event, len(bundle.engagements)]
            for routed in bundle.engagements:
                origin = routed[1]
                merge.add(origin.source, routed[0].ts, (routed, entry))
            self.bundle_context[message.partition] = event
            pending.append(entry)
        if invalid:
            if not await self.run_batch(invalid, self.on_engagements, assignment=assignment):
                return
            for letter in dead:
                letter[1] = 0
        limit = self.settings.batch_max_events
        while True:
            items: list[tuple[EventT[Any], list[Routed] | Invalid]] = []
            applied: list[list[Any]] = []
            more = False
            for partition, merge in self.merges.items():
                released = merge.release(limit)
                if not released:
                    continue
                more = more or len(released) == limit
                items.append((self.bundle_context[partition], [r for r, _ in released]))
                applied.extend(entry for _, entry in released)
            if items and not await self.run_batch(
                items, self.on_engagements, assignment=assignment
            ):
                return
            for held in applied:
                held[1] -= 1
            await self.ack_applied()
            if not more:
                break
            await asyncio.sleep(0)

    async def ack_applied(self) -> None:
        """Acknowledges, partition by partition, the leading messages with nothing held."""
        stream = self.engagement_stream
        assert stream is not None
        for pending in self.pending_acks.values():
            while pending and pending[0][1] == 0:
                await stream.ack(pending.popleft()[0])

    async def on_engagements(self, event: EventT[Any], routed: list[Routed] | Invalid) -> None:
        """Target steps for engagements released by a partition's merge, in that order."""
        if isinstance(routed, Invalid):
            await self.dead_letter(routed, event)
            return
        partition = event.message.partition
        cache = self.cache(partition)
        for engagement, origin in routed:
            clock = await self.watch(partition, engagement.ts)
            self.metrics.event_time(engagement.ts, partition)
            for change, day in clock.advance(engagement.ts, cache.state_of, self.model):
                cache.mark(change.user)
                await self.publish(change, f"decay:{day}", partition)
            out = target_step(cache, engagement, origin, self.model)
            if out.duplicate:
                self.metrics.duplicate("target")
            elif out.change is not None:
                await self.publish(out.change, engagement.id, partition)

    async def watch(self, partition: int, ts: int) -> DecayWatch:
        """The partition's decay watch, created here and nowhere else: on the first event of
        the partition after a start or a rebalance, from the stored users of that partition,
        and resumed at that event's time (`DecayWatch.resume`), whether that event is an
        input or an engagement."""
        watch = self.clocks.get(partition)
        if watch is not None:
            return watch
        if self.watched is None:
            self.watched = await self.scan_watched_users()
        watch = self.clocks[partition] = DecayWatch(users=self.watched.pop(partition, {}))
        cache = self.cache(partition)
        for change, day in watch.resume(ts, cache.state_of, self.model):
            cache.mark(change.user)
            await self.publish(change, f"decay:{day}", partition)
        return watch

    async def scan_watched_users(self) -> dict[int, dict[str, None]]:
        """Stored users whose published score is high enough to fall a point by decay alone,
        by partition: one pass over the table, the event loop free every few thousand rows."""
        floor = self.model.decay_check_min_score
        watched: dict[int, dict[str, None]] = {}
        for scanned, (key, value) in enumerate(list(self.table.items())):
            if scanned % 2000 == 1999:
                await asyncio.sleep(0)  # a large table: let heartbeats and fetches through
            published = self.leaders.scanned(key, value).state.published
            if published is not None and published >= floor:
                partition = key_partition(key, self.partition_count)
                watched.setdefault(partition, {})[key.decode()] = None
        return watched

    async def on_control(self, event: EventT[Any], _: None = None) -> None:
        message = event.message
        try:
            request = orjson.loads(message.value or b"")
        except orjson.JSONDecodeError as exc:
            await self.dead_letter(Invalid("bad_json", str(exc)[:200]), event)
            return
        user = request.get("user") if isinstance(request, dict) else None
        if not isinstance(request, dict) or request.get("kind") != "forget":
            await self.dead_letter(Invalid("unknown_kind", "control kind must be forget"), event)
            return
        if not isinstance(user, str) or not user:
            await self.dead_letter(Invalid("missing_field", "forget needs a user"), event)
            return
        if message.key is not None and message.key != user.encode():
            await self.dead_letter(Invalid("key_mismatch", "message key must be the user"), event)
            return
        self.cache(message.partition).forget(user)
        self.leaders.forget(message.partition, user)
        for clock in self.clocks.values():
            clock.forget(user)
        await self.send(self.score_changes, user.encode(), None)


def create_app(settings: Settings, model: Model) -> faust.App:
    """The worker's Faust app, built from settings (nothing happens at import time)."""
    brokers = [f"kafka://{server}" for server in settings.bootstrap_servers.split(",")]
    app = faust.App(
        settings.app_id,
        broker=brokers,
        store=settings.store,
        datadir=settings.app_data_dir,
        processing_guarantee=settings.processing_guarantee,
        web_bind=settings.web_host,
        web_host=settings.web_advertised_host or settings.web_host,
        web_port=settings.web_port,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        broker_session_timeout=settings.session_timeout_s,
        broker_rebalance_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_credentials=_credentials(settings),
        producer_acks=-1,
        # Faust would wait, at every rebalance and stop, for every message it delivered to be
        # acknowledged: the inputs and engagements held for event-time order never are, so
        # a worker with a backlog hung for minutes on SIGTERM and its group rebalanced over
        # and over. Held messages are dropped instead (redelivered to the next owner); a batch
        # in flight finishes under the batch lock (`on_revoked`).
        stream_wait_empty=False,
        key_serializer="raw",
        value_serializer="raw",
        autodiscover=False,
    )
    install_transport(app)  # AtLeastOnceConsumer, SourcePartitionTransactions
    pipeline = Pipeline(app, settings, model)
    app.influence = pipeline  # type: ignore[attr-defined]
    register_views(app, pipeline, pipeline.metrics, settings.api_token)

    batch, within = settings.batch_max_events, settings.batch_within_s
    seeker = install_start_seek(app, settings)  # --from: where uncommitted inputs start

    @app.agent(pipeline.inputs, name="act")
    async def act(stream: faust.StreamT[bytes]) -> None:
        inputs = pipeline.input_stream = cast(Stream[bytes], stream)
        async for events in inputs.noack_take(batch, within=within):
            await pipeline.run_inputs(cast(Sequence[EventT[Any]], events))

    @app.timer(settings.align_max_wait_s / 2)  # type: ignore[untyped-decorator]
    async def release_held_inputs() -> None:
        """Inputs held for a partition that went quiet go once `align_max_wait_s` passed;
        progress that changed without an input (a partition found idle) is announced."""
        if pipeline.input_stream is not None:
            await pipeline.unless_stopping(lambda: pipeline.run_inputs([]))

    @app.timer(settings.align_max_wait_s)  # type: ignore[untyped-decorator]
    async def release_held_engagements() -> None:
        """Held engagements are released as messages arrive; when none arrive, this lets a
        merge that waited `merge_max_wait_s` for a silent source go on."""
        if pipeline.engagement_stream is not None and any(
            merge.held for merge in pipeline.merges.values()
        ):
            await pipeline.unless_stopping(lambda: pipeline.run_engagements([]))

    @app.timer(settings.held_report_interval_s)  # type: ignore[untyped-decorator]
    async def report_held() -> None:
        """Says which sources keep engagements waiting (a stalled source shows here)."""
        for partition, merge in pipeline.merges.items():
            if merge.held:
                log.info(
                    "partition %s holds %s engagements, waiting on sources %s (progress %s)",
                    partition,
                    merge.held,
                    merge.waiting_on(),
                    sorted(merge.progress.items()),
                )

    @app.agent(pipeline.engagements, name="receive")
    async def receive(stream: faust.StreamT[bytes]) -> None:
        engagements = pipeline.engagement_stream = cast(Stream[bytes], stream)
        async for events in engagements.noack_take(batch, within=within):
            await pipeline.run_engagements(cast(Sequence[EventT[Any]], events))

    @app.agent(pipeline.control, name="control")
    async def control(stream: faust.StreamT[bytes]) -> None:
        async for events in cast(Stream[bytes], stream).take_events(batch, within=within):
            await pipeline.run_batch([(e, None) for e in events], pipeline.on_control)

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, /, *_: Any, **__: Any) -> None:
        # Under the batch lock: a batch in flight finishes (outputs and changelog records on
        # the broker) before its decoded users are dropped (found by a kill test).
        cast(AtLeastOnceConsumer, app.consumer).expire_delivered()
        async with pipeline.lock:
            pipeline.reset()
            if settings.processing_guarantee == "at_least_once":
                await app.consumer.commit()  # what Faust's wait for streams did besides waiting

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, /, *args: Any, **__: Any) -> None:
        assigned: Iterable[TP] = args[0] if args else ()
        consumer = cast(AtLeastOnceConsumer, app.consumer)
        consumer.after_seek = pipeline.drop_holds
        consumer.start_offsets = dict(seeker.offsets) if seeker is not None else {}
        async with pipeline.lock:
            pipeline.reset()
            pipeline.track_inputs(assigned)
        pipeline.metrics.rebalance()

    @app.on_before_shutdown.connect
    async def on_shutdown(sender: Any, /, *_: Any, **__: Any) -> None:
        await pipeline.end_offsets.stop()

    return app


def _credentials(settings: Settings) -> Any:
    if settings.sasl_mechanism:
        return faust.SASLCredentials(
            username=settings.sasl_username or "",
            password=settings.sasl_password or "",
            mechanism=settings.sasl_mechanism,
            ssl_context=None,
        )
    if settings.ssl_cafile:
        import ssl

        return ssl.create_default_context(cafile=settings.ssl_cafile)
    return None
