"""Inputs read in another partition than their actor's, forwarded to the actor's partition.

A user's state lives in partition murmur2(user) % partitions. A producer on another
partitioner (librdkafka's default `consistent_random`, CRC32: kcat, confluent-kafka) puts
three in four of a user's events elsewhere. Like Kafka Streams after `selectKey`, the worker
that reads such an input (the forwarder) sends it on to the actor's partition of an internal
topic with the inputs' partition count (`Topics.forwarded`), where the actor's owner applies it.

- **Forwarded on arrival, not aligned.** The forwarder sends an input on as soon as it reads it,
  without holding it for event-time order: forwarding needs no state, and an owner that waits
  for its peers' forwarding (below) must never wait for a peer that waits for it. The input is
  acknowledged in its partition's offset order (after the events held before it).
- **Exactly once in effect.** A forwarded copy keeps its original position (topic index,
  partition, offset), with `via` the forward partition (`steps.Position`); the owner's offset
  guard runs on it, so a copy forwarded again after a forwarder's crash is recognised.
- **In event-time order.** Each forwarder announces, for every input partition it owns, the
  latest event time it has read there (so forwarded) and whether it is idle (`Progress`),
  on every forward partition, whenever that changed (as `pipeline.merge` does for the
  repartition topic). At the owner, a forward partition's events wait in a `SourceMerge` over
  its forwarders until every forwarder has passed them, and then join the owner's aligner as
  one more partition whose watermark is that merge's low water (`SourceMerge.low_water`): the
  owner's own inputs wait for the forwarded ones, never the other way round.
  Engagements of forwarded inputs come from the merge source (`FORWARDED_TOPIC`, partition);
  its owner announces its progress to the targets like any input partition's.
- **Exactly-once processing** sends no progress (as for the repartition topic, see
  docs/pipeline.md): forwards join their source partition's transaction, and the owner
  applies them in arrival order.

Plain code over Faust-like events (`.message.topic/.partition/.offset/.value`): tested
without a broker (tests/test_forward.py).
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from pipeline.codec import key_partition
from pipeline.merge import Progress, Source, SourceMerge, decode_progress, encode_progress
from pipeline.steps import Position
from scoring import Event, Invalid
from scoring.errors import StateError


class Forwarded:
    """The payload of an input forwarded on arrival: left to acknowledge, in its order."""

    __slots__ = ()


FORWARDED = Forwarded()


@dataclass(slots=True)
class Ticket:
    """A forward-topic message until every event it carries has been applied: messages are
    acknowledged in offset order (Faust's commit skips a hole at a partition's head)."""

    event: Any
    left: int = 0


@dataclass(frozen=True, slots=True)
class Arrived:
    """A forwarded input at its owner: the event, its original position (`via` set) and the
    message that brought it."""

    event: Event
    origin: Position
    ticket: Ticket


InputPayload = Event | Invalid | Arrived | Forwarded
"""What the `act` agent hands its step: an input, a refused one, a forwarded one, or the
acknowledgement of one it forwarded."""


class ForwardBundle(NamedTuple):
    """One forward-topic message: inputs for its partition, and the sender's progress."""

    events: list[tuple[Position, Event]]
    progress: list[tuple[Source, Progress]]


def encode_forwarded(
    events: Sequence[tuple[Position, Event]], progress: Iterable[tuple[Source, Progress]] = ()
) -> bytes:
    return orjson.dumps(
        {
            "events": [[o.topic, o.partition, o.offset, *event] for o, event in events],
            "progress": encode_progress(progress),
        }
    )


def decode_forwarded(data: bytes) -> ForwardBundle:
    try:
        doc = orjson.loads(data)
        events: list[tuple[Position, Event]] = []
        for topic, partition, offset, *row in doc["events"]:
            if not all(isinstance(n, int) for n in (topic, partition, offset)):
                raise TypeError("a forwarded input's position must be three integers")
            if len(row) != len(Event._fields) or not isinstance(row[2], int):
                raise TypeError("a forwarded input must be a v1 event row")
            row[7], row[8] = tuple(row[7]), tuple(row[8])  # hashtags, ref_hashtags
            events.append((Position(topic, partition, offset), Event(*row)))
        progress = decode_progress(doc["progress"])
    except (orjson.JSONDecodeError, ValueError, TypeError, KeyError) as exc:
        raise StateError(f"forward message is not a bundle of input rows: {exc}") from exc
    return ForwardBundle(events, progress)


def next_after(tp: Any, last_offset: int) -> int:
    """The next offset to read when the last one seen is all a reader knows of its position."""
    return last_offset + 1


def forwarders(input_topics: int, partitions: int, destination: int) -> frozenset[Source]:
    """The input partitions that may forward to `destination`: all but its own."""
    return frozenset(
        (t, p) for t in range(input_topics) for p in range(partitions) if p != destination
    )


class Forwarding:
    """A worker's two halves of forwarding: the forwarder's outbox and read progress, and the
    owner's merges, watermarks and acknowledgement order of the forward partitions it owns."""

    def __init__(
        self,
        topic: str,
        inputs: Sequence[str],
        partitions: int,
        has_more: Callable[[Any, int], bool],
        *,
        next_offset: Callable[[Any, int], int] = next_after,
        exactly_once: bool = False,
        max_wait_s: float = float("inf"),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`topic`: the forward topic; `has_more(tp, last_offset)` as `EventTimeAligner`'s;
        `next_offset(tp, last_offset)`: the next offset this worker will read there;
        `max_wait_s`: how long forwarded events wait for a silent forwarder (`SourceMerge`)."""
        self.topic = topic
        self.input_index = {name: i for i, name in enumerate(inputs)}
        self.input_topics = len(inputs)
        self.partitions = partitions
        self.has_more = has_more
        self.next_offset = next_offset
        self.exactly_once = exactly_once
        self.max_wait_s = max_wait_s
        self.clock = clock
        self.outbox: dict[tuple[int, int], list[tuple[Position, Event]]] = {}
        """By (source partition under exactly-once, else -1; destination partition)."""
        self.contexts: dict[int, Any] = {}
        """Per source partition: its latest forwarded input (the transaction its forwards join)."""
        self.read_ts: dict[Source, int] = {}
        self.progress_sent: dict[Source, Progress] = {}
        self.merges: dict[int, SourceMerge[tuple[Any, Arrived]]] = {}
        self.pending: dict[int, deque[Ticket]] = {}
        self.epoch = 0
        """Counts intakes (`arrived`): a confirmation read across one is stale."""

    # The forwarder's side.

    def route_input(self, event: Any, decoded: Event) -> bool:
        """Notes an input read from an input partition; queues it for its actor's partition
        and returns True when it belongs there rather than here."""
        message = event.message
        partition = message.partition
        source = (self.input_index[message.topic], partition)
        if decoded.ts > self.read_ts.get(source, decoded.ts - 1):
            self.read_ts[source] = decoded.ts
        destination = key_partition(decoded.actor.encode(), self.partitions)
        if destination == partition:
            return False
        key = (partition if self.exactly_once else -1, destination)
        origin = Position(source[0], partition, message.offset)
        self.outbox.setdefault(key, []).append((origin, decoded))
        self.contexts[partition] = event
        return True

    def read_progress(self, queues: Mapping[Any, Any]) -> dict[Source, Progress]:
        """Per owned input partition (the aligner's `queues`, by tp): the latest event time
        read, and idle when the broker holds nothing more there, up to the offset read
        (`Progress.end`: the owner trusts the claim only while the broker has nothing past it)."""
        out: dict[Source, Progress] = {}
        for tp, queue in queues.items():
            index = self.input_index.get(tp.topic)
            if index is not None:
                source = (index, tp.partition)
                read_ts = self.read_ts.get(source)
                if self.has_more(tp, queue.last_offset):
                    out[source] = Progress(read_ts, False)
                else:
                    out[source] = Progress(read_ts, True, self.next_offset(tp, queue.last_offset))
        return out

    def due(self, queues: Mapping[Any, Any]) -> bool:
        """Anything to send: forwards, or progress that changed (at-least-once)."""
        if self.outbox:
            return True
        return not self.exactly_once and self.read_progress(queues) != self.progress_sent

    def take(self, queues: Mapping[Any, Any], size: int) -> list[tuple[Any, int, bytes]]:
        """The messages to send now, as (context event or None, partition, value): the
        forwards, then, when it changed, the progress on every partition (after the
        forwards it covers, through the same producer)."""
        out: list[tuple[Any, int, bytes]] = []
        for (source, destination), rows in self.outbox.items():
            context = self.contexts.get(source) if self.exactly_once else None
            for start in range(0, len(rows), size):
                out.append((context, destination, encode_forwarded(rows[start : start + size])))
        self.outbox.clear()
        self.contexts.clear()
        if not self.exactly_once:
            progress = self.read_progress(queues)
            if progress != self.progress_sent:
                message = encode_forwarded([], sorted(progress.items()))
                out.extend((None, partition, message) for partition in range(self.partitions))
                self.progress_sent = progress
        return out

    # The owner's side.

    def merge(self, partition: int) -> SourceMerge[tuple[Any, Arrived]]:
        merge = self.merges.get(partition)
        if merge is None:
            sources = (
                frozenset()  # no progress under exactly-once: arrival order
                if self.exactly_once
                else forwarders(self.input_topics, self.partitions, partition)
            )
            merge = self.merges[partition] = SourceMerge(
                sources, max_wait_s=self.max_wait_s, clock=self.clock
            )
        return merge

    def receive(self, event: Any) -> Invalid | None:
        """A forward-topic message: its inputs held until their forwarders have passed them,
        its progress noted. An Invalid for a message that is not a forward bundle."""
        message = event.message
        partition = message.partition
        ticket = Ticket(event)
        self.pending.setdefault(partition, deque()).append(ticket)
        try:
            bundle = decode_forwarded(message.value or b"")
        except StateError as exc:
            return Invalid("bad_forward", str(exc)[:200])
        merge = self.merge(partition)
        for source, (at, idle, end) in bundle.progress:
            merge.announce(source, at, idle, end)
        for origin, decoded in bundle.events:
            via = Position(origin.topic, origin.partition, origin.offset, partition)
            ticket.left += 1
            arrived = Arrived(decoded, via, ticket)
            merge.add((origin.topic, origin.partition), decoded.ts, (event, arrived))
        return None

    def idle_claims(self) -> set[Source]:
        """Input partitions whose forwarders claim to be idle: before releasing, the owner
        reads their end offsets from the broker (`confirm`), after the items it holds arrived."""
        return {source for merge in self.merges.values() for source in merge.idle_claims()}

    def arrived(self) -> None:
        """New inputs or forwards were taken in: end offsets read before they were fetched
        confirm nothing about them, so every idle claim waits for a fresh read."""
        self.epoch += 1
        for merge in self.merges.values():
            merge.unconfirm()

    def confirm(self, ends: Mapping[Source, int], epoch: int) -> None:
        """End offsets read from the broker since `epoch` began (none taken in meanwhile)."""
        if epoch != self.epoch:
            return
        for merge in self.merges.values():
            merge.confirm(ends)

    def release(self) -> list[tuple[int, int, int, tuple[Any, Arrived]]]:
        """Forwarded inputs every forwarder has passed, as (partition, offset, ts, item) for
        the aligner, oldest first per partition."""
        out = []
        for partition, merge in self.merges.items():
            for item in merge.release(sys.maxsize):
                out.append((partition, item[0].message.offset, item[1].event.ts, item))
        return out

    def watermark(self, tp: Any) -> float | None:
        """The aligner's watermark of a forward partition (None for any other): the earliest
        event time its merge may still release."""
        if tp.topic != self.topic:
            return None
        return self.merge(tp.partition).low_water()

    def progress_of(self, tp: Any, known: Progress, held: bool) -> Progress:
        """A forward partition's progress for the targets: with nothing held in the aligner,
        every forwarded input before its watermark has been applied and its engagements sent."""
        if tp.topic != self.topic or held:
            return known
        mark = self.merge(tp.partition).low_water()
        if mark in (float("inf"), float("-inf")):
            return known
        at = int(mark) if known.time is None else max(known.time, int(mark))
        return Progress(at, known.idle)

    def settle(self, items: Iterable[tuple[Any, InputPayload]]) -> list[Any]:
        """After `items` were applied and flushed: the events to acknowledge now (the inputs
        among them, and every forward partition's leading messages with nothing left)."""
        acks = []
        for event, payload in items:
            if isinstance(payload, Arrived):
                payload.ticket.left -= 1
            elif event.message.topic != self.topic:
                acks.append(event)
        acks.extend(self.ackable())
        return acks

    def ackable(self) -> list[Any]:
        out = []
        for pending in self.pending.values():
            while pending and pending[0].left <= 0:
                out.append(pending.popleft().event)
        return out

    def drop(self) -> None:
        """A seek or rebalance: everything delivered and not applied comes again; what the
        forwarders announced still holds."""
        self.outbox.clear()
        self.contexts.clear()
        for merge in self.merges.values():
            merge.drop_held()
        self.pending.clear()

    def reset(self) -> None:
        """Partitions moved: forget them; every worker announces anew."""
        self.drop()
        self.merges.clear()
        self.read_ts.clear()
        self.progress_sent.clear()
