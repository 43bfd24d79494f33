"""The order a worker applies its messages in, and the order it acknowledges them in.

Two halves, each plain synchronous code around the topology (`pipeline.topology`), driven by
a runner (the Faust worker or the in-process driver) that sends the outbox and acknowledges
what they return:

- `InputFlow`: input and forward-topic messages, decoded, forwarded when their actor lives in
  another partition (`pipeline.forward`), held in event-time order across the worker's input
  partitions (`pipeline.aligner`), released a slice at a time to the actor step, followed by
  the forwards and the progress announcements the targets' merges wait on (`pipeline.merge`).
- `EngagementFlow`: repartition messages, their engagements held per target partition until
  every source has passed their time (`pipeline.merge`), released to the target step, and the
  messages acknowledged in offset order once all their engagements are applied and stored.

`has_more(tp, last_offset)` (does the broker hold input beyond what reached the aligner?) and
the wall clock of the holds' maximum waits are given, not read: the driver simulates both.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, cast

from pipeline.aligner import EventTimeAligner
from pipeline.forward import (
    FORWARDED,
    Arrived,
    Forwarded,
    Forwarding,
    InputPayload,
    next_after,
)
from pipeline.merge import Progress, Source, SourceMerge, all_sources
from pipeline.outbox import Output
from pipeline.steps import Position, Routed, decode_engagements, encode_engagements
from pipeline.topology import Topology
from scoring import Event, Invalid
from scoring.errors import StateError

HasMore = Callable[[Any, int], bool]
NextOffset = Callable[[Any, int], int]
"""`next_offset(tp, last_offset)`: the next offset the worker reads in `tp` past the last one
that reached the aligner (what a forwarder's idle claim covers, `merge.Progress.end`)."""


class TP(NamedTuple):
    """A topic partition (equal to, and hashed as, Faust's and aiokafka's)."""

    topic: str
    partition: int


class InputFlow:
    """Input messages from receipt to acknowledgement (see the module docstring)."""

    def __init__(
        self,
        topology: Topology,
        has_more: HasMore,
        clock: Callable[[], float] | None = None,
        next_offset: NextOffset = next_after,
    ) -> None:
        settings = topology.settings
        names = settings.topics
        self.topology = topology
        self.exactly_once = topology.exactly_once
        clocked: dict[str, Any] = {} if clock is None else {"clock": clock}
        self.forwarding = Forwarding(
            names.forwarded,
            names.inputs,
            settings.partitions,
            has_more,
            exactly_once=self.exactly_once,
            max_wait_s=settings.merge_max_wait_s,
            next_offset=next_offset,
            **clocked,
        )
        """Inputs read outside their actor's partition, sent on there (`pipeline.forward`)."""
        self.aligner: EventTimeAligner[tuple[Any, InputPayload]] = EventTimeAligner(
            has_more,
            settings.align_max_wait_s,
            watermark=self.forwarding.watermark,
            watermark_max_wait_s=settings.merge_max_wait_s,
            **clocked,
        )
        self.input_index = topology.input_index
        self.released_ts: dict[Any, int] = {}
        """Per owned input partition: the latest event time released to the actor step."""
        self.input_context: dict[int, Any] = {}
        """Per input partition number: its latest released event (under exactly-once, the
        transaction its progress announcements join)."""
        self.progress_sent: dict[Source, Progress] = {}

    def track(self, assigned: Iterable[Any]) -> None:
        self.aligner.track(sorted(tp for tp in assigned if tp.topic in self.input_index))

    def receive(self, events: Iterable[Any]) -> list[tuple[Any, InputPayload]]:
        """Delivered messages into the aligner (or forwarded); returns the refused ones that
        may go to the dead-letter topic at once (none of their partition's is held)."""
        ready: list[tuple[Any, InputPayload]] = []
        aligner, forwarding = self.aligner, self.forwarding
        events = list(events)
        if events:
            forwarding.arrived()
        for event in events:
            message = event.message
            if message.topic == forwarding.topic:
                refused = forwarding.receive(event)
                if refused is not None:
                    ready.append((event, refused))
                continue
            decoded: InputPayload = self.topology.decode_input(event)
            if isinstance(decoded, Event) and forwarding.route_input(event, decoded):
                decoded = FORWARDED  # sent on in this round; acknowledged in its turn
            if isinstance(decoded, Event):
                aligner.add(message.tp, message.offset, decoded.ts, (event, decoded))
            elif not aligner.follow(message.tp, message.offset, (event, decoded)):
                ready.append((event, decoded))
        return ready

    def idle_claims(self) -> list[tuple[str, int]]:
        """Input partitions, as (topic, partition), whose forwarders claim to be idle: their
        end offsets are read before forwarded inputs are released (`confirm`)."""
        names = self.topology.settings.topics.inputs
        return sorted(
            (names[topic], partition) for topic, partition in self.forwarding.idle_claims()
        )

    def confirm(self, ends: dict[tuple[str, int], int], epoch: int) -> None:
        """End offsets read since `epoch` (`Forwarding.confirm`), by (topic, partition)."""
        index = self.input_index
        self.forwarding.confirm({(index[t], p): end for (t, p), end in ends.items()}, epoch)

    def release_forwarded(self) -> None:
        """Forwarded inputs every forwarder has passed, into the aligner."""
        aligner, forwarding = self.aligner, self.forwarding
        for partition, offset, ts, item in forwarding.release():
            aligner.add(TP(forwarding.topic, partition), offset, ts, item)

    def release(self, limit: int) -> list[tuple[Any, InputPayload]]:
        return self.aligner.release(limit)

    def idle(self, ready: Sequence[Any]) -> bool:
        """Nothing to run: no released input, no progress or forward to send."""
        return (
            not ready and not self.progress_due() and not self.forwarding.due(self.aligner.queues)
        )

    def apply(self, event: Any, decoded: InputPayload) -> None:
        """One released item: a dead letter, a forwarded input's acknowledgement, or the
        actor step (a forwarded input guarded on its original position)."""
        topology = self.topology
        if isinstance(decoded, Invalid):
            topology.dead_letter(decoded, event)
            return
        if isinstance(decoded, Forwarded):
            return  # sent on to its actor's partition when it was read
        message = event.message
        origin = Position(self.input_index[message.topic], message.partition, message.offset)
        if isinstance(decoded, Arrived):
            origin = decoded.origin
            decoded = decoded.event
        tp = message.tp
        if decoded.ts > self.released_ts.get(tp, decoded.ts - 1):
            self.released_ts[tp] = decoded.ts
        self.input_context[message.partition] = event
        topology.apply_input(event, decoded, origin)

    def finish(self, last_of_partition: dict[int, Any]) -> None:
        """After an input batch's engagements: its forwards and the forwarders' progress
        (`pipeline.forward`), then the engagements' progress, into the outbox."""
        topology = self.topology
        size = topology.settings.engagements_per_message
        forwarded = topology.topics.forwarded
        for context, partition, message in self.forwarding.take(self.aligner.queues, size):
            topology.outbox.add(Output(forwarded, None, message, partition, context))
        self._send_progress()

    def settle(self, ready: Iterable[tuple[Any, InputPayload]]) -> list[Any]:
        """After a batch is applied and its outputs and users are stored: what to ack."""
        return self.forwarding.settle(ready)

    def ackable(self) -> list[Any]:
        return self.forwarding.ackable()

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
        if self.exactly_once:
            return False
        return self.input_progress() != self.progress_sent

    def _send_progress(self) -> None:
        """Tells every target partition how far this worker's input partitions have sent their
        engagements, whenever that changed. After an assignment every worker announces anew
        (`reset`), after the group's new generation began, so a target partition's new owner
        reads it however quiet a source is; an idle pipeline sends nothing. Sent after the
        batch's engagements, through the same producer: a target never sees a source's
        progress before the engagements it covers."""
        if not self.progress_due():
            return
        topology = self.topology
        groups: dict[int, list[tuple[Source, Progress]]] = {}
        for source, known in self.input_progress().items():
            groups.setdefault(source[1] if self.exactly_once else -1, []).append((source, known))
        sent: dict[Source, Progress] = {}
        for group, rows in groups.items():
            # Exactly-once: a partition's progress joins the transaction of its latest input,
            # as its engagements do; before its first input it waits (a send outside any
            # event's transaction made Faust start a second producer for a transactional id,
            # and the first was fenced: a worker crashed with ProducerFenced).
            context = self.input_context.get(group) if self.exactly_once else None
            if self.exactly_once and context is None:
                continue
            message = encode_engagements([], rows)
            for partition in range(topology.partition_count):
                topology.outbox.add(
                    Output(topology.topics.engagements, None, message, partition, context)
                )
            sent.update(rows)
        self.progress_sent = sent

    def drop(self) -> None:
        """A seek or a rebalance: everything delivered and not applied comes again."""
        self.aligner.drop()
        self.forwarding.drop()

    def reset(self) -> None:
        """Partitions moved: forget them (held inputs were never acknowledged)."""
        self.forwarding.reset()
        self.aligner.forget()
        self.released_ts.clear()
        self.input_context.clear()
        self.progress_sent.clear()


Held = list[Any]
"""A repartition message until applied: [event, engagements still held]."""
Released = tuple[Any, list[Routed] | Invalid]


class EngagementFlow:
    """Repartition messages from receipt to acknowledgement (see the module docstring)."""

    def __init__(self, topology: Topology, clock: Callable[[], float] | None = None) -> None:
        settings = topology.settings
        self.topology = topology
        self.clock = clock
        self.sources = all_sources(len(settings.topics.inputs) + 1, settings.partitions)
        """Every merge source: the input partitions, and the forwarded partitions."""
        self.merges: dict[int, SourceMerge[tuple[Routed, Held]]] = {}
        """Per target partition: engagements held until every source has passed their time."""
        self.pending_acks: dict[int, deque[Held]] = {}
        """Per repartition partition, its messages not acknowledged yet, in offset order."""
        self.bundle_context: dict[int, Any] = {}
        """Per target partition: its latest repartition message (the event a release runs as)."""

    @property
    def held(self) -> int:
        return sum(merge.held for merge in self.merges.values())

    def merge(self, partition: int) -> SourceMerge[tuple[Routed, Held]]:
        merge = self.merges.get(partition)
        if merge is None:
            # Exactly-once does not merge yet (engagements in arrival order, as before): its
            # progress announcements still broke a worker's transactions (docs/pipeline.md).
            settings = self.topology.settings
            clocked: dict[str, Any] = {} if self.clock is None else {"clock": self.clock}
            merge = self.merges[partition] = SourceMerge(
                frozenset() if self.topology.exactly_once else self.sources,
                max_wait_s=settings.merge_max_wait_s,
                **clocked,
            )
        return merge

    def receive(self, events: Iterable[Any]) -> tuple[list[Released], list[Held]]:
        """Delivered messages into their partition's merge; returns the unreadable ones (to
        dead-letter now) and their acknowledgement entries (cleared once they are sent)."""
        invalid: list[Released] = []
        dead: list[Held] = []
        for event in events:
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
            entry: Held = [event, len(bundle.engagements)]
            for routed in bundle.engagements:
                merge.add(routed[1].source, routed[0].ts, (routed, entry))
            self.bundle_context[message.partition] = event
            pending.append(entry)
        return invalid, dead

    def release(self, limit: int) -> tuple[list[Released], list[Held], bool]:
        """Up to `limit` engagements per target partition that may be applied now, as items
        for `Topology.apply_engagements`; their entries; and whether a merge had more."""
        items: list[Released] = []
        applied: list[Held] = []
        more = False
        for partition, merge in self.merges.items():
            released = merge.release(limit)
            if not released:
                continue
            more = more or len(released) == limit
            items.append((self.bundle_context[partition], [r for r, _ in released]))
            applied.extend(entry for _, entry in released)
        return items, applied, more

    @staticmethod
    def applied(entries: Iterable[Held]) -> None:
        for held in entries:
            held[1] -= 1

    def ackable(self) -> list[Any]:
        """Partition by partition, the leading messages with nothing held: acknowledged in
        offset order (Faust commits past a one-offset hole at the head of a partition)."""
        out = []
        for pending in self.pending_acks.values():
            while pending and pending[0][1] == 0:
                out.append(pending.popleft()[0])
        return out

    def drop(self) -> None:
        """A seek or a rebalance: held engagements are delivered again; what the sources
        announced is kept (after a rebalance every worker announces anew)."""
        for merge in self.merges.values():
            merge.drop_held()
        self.pending_acks.clear()
        self.bundle_context.clear()

    def reset(self) -> None:
        self.drop()
        self.merges.clear()
