"""A worker's topology and flows composed, and the loops that run a delivery through them.

The loops are written once, as generators of `Step`s, and each runner interprets the steps
its own way: the Faust worker (`pipeline.kafka_app`) awaits the producer and its stream's
acknowledgements and lets the event loop run at a `Pause`; the in-process driver
(`pipeline.driver`) appends to in-memory topics and moves committed offsets. A `Batch` step
is answered with False when the partitions moved since its work was taken (`assignment`):
nothing was done and the next owner is delivered those messages again.

A runner does a `Batch` as the checkpoint of docs/reliability.md orders it: `apply` (the
topology's handlers, then the batch's engagements, forwards and progress in the outbox) →
send the outbox → flush → `changelog` (each changed user's record sent) → flush → each
changed user written to the store once → the following `Ack` step acknowledges the inputs.
The store comes after the changelog: a store ahead of it (a kill -9 in between, a RocksDB
worker restarted on its data dir) would take the redelivered messages for seen and never
write their users to the changelog.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.forward import next_after
from pipeline.ordering import EngagementFlow, HasMore, InputFlow, NextOffset
from pipeline.outbox import Output
from pipeline.topology import Scope, Topology


@dataclass(frozen=True, slots=True)
class Batch:
    """Items to handle as one batch; `finish` adds what follows its engagements."""

    items: Sequence[tuple[Any, Any]]
    handle: Callable[[Any, Any], None]
    finish: Callable[[dict[int, Any]], None] | None = None
    assignment: int | None = None


@dataclass(frozen=True, slots=True)
class Ack:
    """Events to acknowledge (their outputs and users are stored), in this order."""

    events: list[Any]


@dataclass(frozen=True, slots=True)
class EndOffsets:
    """Read these input partitions' end offsets from the broker, after the delivery was
    fetched; answered with {(topic, partition): end}, or None when the read failed (the
    forwarders' idle claims then keep holding: docs/pipeline.md, Producers)."""

    partitions: list[tuple[str, int]]


class Pause:
    """Between two slices of a backlog: a worker lets heartbeats, fetches and timers run."""

    __slots__ = ()


PAUSE = Pause()
Step = Batch | Ack | EndOffsets | Pause
Steps = Generator[Step, Any, None]
"""A `Batch` is answered with a bool (done), `EndOffsets` with its offsets, the rest with None."""


class Processing:
    """One worker's topology with its input and engagement flows (`pipeline.ordering`)."""

    def __init__(
        self,
        topology: Topology,
        has_more: HasMore,
        clock: Callable[[], float] | None = None,
        next_offset: NextOffset = next_after,
    ) -> None:
        self.topology = topology
        self.inputs = InputFlow(topology, has_more, clock, next_offset)
        self.engagements = EngagementFlow(topology, clock)
        self.limit = topology.settings.batch_max_events

    # the loops

    def input_steps(self, events: Iterable[Any]) -> Steps:
        """Input events in event-time order across partitions (`pipeline.aligner`), then acked.

        Valid events wait in the aligner until every partition behind them has caught up,
        unacknowledged, so a crash or a rebalance redelivers them; a refused one goes to the
        dead-letter topic at once unless events of its partition are held (then after them).
        A backlog is released a slice at a time. After each slice the worker announces how
        far each of its input partitions has sent its engagements (`pipeline.merge`).
        """
        inputs, limit = self.inputs, self.limit
        ready = inputs.receive(events)
        claims = inputs.idle_claims()
        if claims:
            epoch = inputs.forwarding.epoch
            ends = yield EndOffsets(claims)
            if ends is not None:
                inputs.confirm(ends, epoch)
        inputs.release_forwarded()
        assignment = self.topology.assignment
        while True:
            ready.extend(inputs.release(limit))
            if inputs.idle(ready):
                yield Ack(inputs.ackable())
                return
            if not (yield Batch(ready, inputs.apply, inputs.finish, assignment)):
                return
            yield Ack(inputs.settle(ready))
            if len(ready) < limit:
                return
            ready = []
            yield PAUSE

    def engagement_steps(self, events: Iterable[Any]) -> Steps:
        """Repartition messages: engagements held per target partition until every source
        has passed their event time (`pipeline.merge`), then applied a slice at a time.

        Messages are acknowledged in offset order, each once all its engagements are applied
        and stored: Faust commits past a one-offset hole at the head of a partition (it takes
        it for a transaction marker), so a message acknowledged while an earlier one is held
        would let the commit skip the held one, and a restart lose it.
        """
        flow, topology, limit = self.engagements, self.topology, self.limit
        assignment = topology.assignment
        invalid, dead = flow.receive(events)
        if invalid:
            if not (yield Batch(invalid, topology.apply_engagements, None, assignment)):
                return
            for letter in dead:
                letter[1] = 0
        while True:
            items, applied, more = flow.release(limit)
            if items and not (yield Batch(items, topology.apply_engagements, None, assignment)):
                return
            flow.applied(applied)
            yield Ack(flow.ackable())
            if not more:
                return
            yield PAUSE

    def control_steps(self, events: Iterable[Any]) -> Steps:
        """Forget requests (acknowledged by the runner's stream once the batch is done)."""
        yield Batch([(event, None) for event in events], self.topology.apply_control)

    # a batch

    def apply(
        self, batch: Batch, scope: Scope | None = None
    ) -> tuple[list[Output], dict[int, Any]]:
        """The batch's handlers run (each inside `scope(event)`, `Topology.run`); returns its
        outputs in order and each partition's last event (whose partition's changed users
        `changelog` writes after the outputs)."""
        topology = self.topology
        last_of_partition = topology.run(batch.items, batch.handle, scope)
        if batch.finish is not None:
            batch.finish(last_of_partition)
        return topology.outbox.take(), last_of_partition

    def changelog(
        self, partition: int, event: Any, store: MutableMapping[bytes, bytes]
    ) -> list[Output]:
        """The partition's changed users written to `store` (the runners give an empty dict
        and write the table's store from it once the records are on the broker), as the
        changelog records to send."""
        return self.topology.changelog(partition, store, event)

    # partitions moving

    def drop_holds(self) -> None:
        """Lets go of every message delivered and not yet applied: after a rebalance or a seek
        the consumer delivers them again, from the committed offset. Kept, they would be
        applied ahead of their redelivered predecessors, which the offset guards would then
        take for seen and skip. Work released but not yet run is dropped too (`assignment`).
        What the sources announced is kept; after a rebalance (`reset`) every worker
        announces anew."""
        self.topology.assignment += 1
        self.inputs.drop()
        self.engagements.drop()

    def reset(self) -> None:
        """Partitions moved: decoded users, stream clocks and held inputs may belong elsewhere
        now (held inputs were never acknowledged: they will be delivered again)."""
        self.drop_holds()
        self.inputs.reset()
        self.engagements.reset()
        self.topology.reset()

    def track(self, assigned: Iterable[Any]) -> None:
        self.inputs.track(assigned)
